"""``ingestd serve`` over real HTTP: submit headers, Prefer: wait, idempotency races, SSE resume, cancel,
tenants, and refused bodies as problem+json."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import orjson
from server_process import Served, wait_finished

PROBLEM = "application/problem+json"


def test_submit_is_202_with_location_and_retry_after(acme: httpx.Client) -> None:
    response = acme.post("/v1/pipelines/demo/jobs", json={"items": 2, "seconds": 0.05})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert 1 <= int(response.headers["retry-after"]) <= 600
    assert response.headers["content-type"] == "application/json"
    status = acme.get(response.headers["location"])
    assert status.status_code == 200 and status.json()["id"] == job["id"]
    assert wait_finished(acme, job["id"])["status"] == "succeeded"
    assert acme.get(f"/v1/jobs/{job['id']}/result").json() == {"ok": [0, 1], "failed": []}


def test_prefer_wait_gives_the_finished_job(acme: httpx.Client) -> None:
    response = acme.post("/v1/pipelines/demo/jobs", json={"items": 2, "seconds": 0.1}, headers={"Prefer": "wait=20"})
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=20"
    assert response.json()["status"] == "succeeded"
    slow = acme.post("/v1/pipelines/demo/jobs", json={"items": 1, "seconds": 5}, headers={"Prefer": "wait=0.5"})
    assert slow.status_code == 202 and slow.json()["status"] in ("queued", "running")
    acme.post(f"/v1/jobs/{slow.json()['id']}/cancel")


def test_50_concurrent_identical_submits_make_one_job(served: Served) -> None:
    async def race() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {served.keys['acme']}", "Idempotency-Key": f"race-{os.urandom(4).hex()}"}
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=served.server.url, headers=headers, limits=limits, timeout=30) as c:
            body = {"items": 1, "seconds": 0}
            return await asyncio.gather(*(c.post("/v1/pipelines/demo/jobs", json=body) for _ in range(50)))

    answers = asyncio.run(race())
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 49


def _read_events(client: httpx.Client, job_id: str, last_event_id: int | None, stop_after: int | None) -> list[Any]:
    """Events from the stream; with ``stop_after``, drop the connection after that many."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    got: list[Any] = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(": ")
                fields[name] = value
            elif not line and "data" in fields:
                got.append((int(fields["id"]), fields["event"], orjson.loads(fields["data"])))
                fields = {}
                if stop_after is not None and len(got) == stop_after:
                    return got  # closing the stream here drops the connection mid-job
    return got


def test_sse_resumes_after_a_dropped_connection_with_every_event_once(acme: httpx.Client) -> None:
    job = acme.post("/v1/pipelines/demo/jobs", json={"items": 6, "seconds": 0.15, "concurrency": 1}).json()
    first = _read_events(acme, job["id"], None, stop_after=4)
    assert acme.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"  # dropped while the job runs
    rest = _read_events(acme, job["id"], first[-1][0], stop_after=None)
    seen = [seq for seq, _, _ in first + rest]
    assert seen == list(range(1, len(seen) + 1))  # every event exactly once, in order
    assert rest[-1][1] == "job.finished" and rest[-1][2]["data"]["status"] == "succeeded"
    progress = [data["data"] for _, kind, data in first + rest if kind == "job.progress"]
    assert progress[-1] == {"stage": "work", "done": 6, "total": 6}
    whole = _read_events(acme, job["id"], None, stop_after=None)
    assert [e[0] for e in whole] == seen


def test_cancel_stops_a_running_job(acme: httpx.Client) -> None:
    job = acme.post("/v1/pipelines/demo/jobs", json={"items": 3, "seconds": 30, "concurrency": 1}).json()
    deadline = time.monotonic() + 10
    while acme.get(f"/v1/jobs/{job['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answers = [acme.post(f"/v1/jobs/{job['id']}/cancel") for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    done = wait_finished(acme, job["id"])
    assert done["status"] == "canceled"
    assert done["progress"]["done"] == 0  # the 30 s item was abandoned, not waited for
    result = acme.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 409 and result.headers["content-type"] == PROBLEM


def test_tenants_are_isolated(served: Served) -> None:
    with served.client("acme") as acme, served.client("globex") as globex:
        job = acme.post("/v1/pipelines/noop/jobs", json={}).json()
        other = globex.get(f"/v1/jobs/{job['id']}")
        assert other.status_code == 404 and other.headers["content-type"] == PROBLEM
        assert globex.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        assert job["id"] not in [j["id"] for j in globex.get("/v1/jobs").json()["jobs"]]
        assert acme.get(f"/v1/jobs/{job['id']}").status_code == 200
    anonymous = httpx.get(served.server.url + "/v1/jobs")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM


def test_refused_requests_are_problem_json(acme: httpx.Client) -> None:
    too_big = acme.post(
        "/v1/pipelines/checksum/jobs", files={"file": ("big.bin", os.urandom(3_000_000))}, data={"input": "{}"}
    )
    wrong_type = acme.post("/v1/pipelines/demo/jobs", content=b"items=3", headers={"content-type": "text/plain"})
    invalid = acme.post("/v1/pipelines/demo/jobs", json={"items": "many"})
    unknown = acme.post("/v1/pipelines/nope/jobs", json={})
    method = acme.patch("/v1/jobs")
    for response, status in [(too_big, 413), (wrong_type, 415), (invalid, 422), (unknown, 404), (method, 405)]:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == status
    assert invalid.json()["errors"][0]["loc"] == ["items"]


def test_upload_is_stored_and_read_back(acme: httpx.Client) -> None:
    data = os.urandom(1_500_000)
    response = acme.post("/v1/pipelines/checksum/jobs", files={"file": ("rec.bin", data)}, data={"input": "{}"})
    assert response.status_code == 202, response.text
    wait_finished(acme, response.json()["id"])
    result = acme.get(f"/v1/jobs/{response.json()['id']}/result").json()
    assert result["files"][0]["size"] == len(data)


def test_an_idle_stream_gets_keep_alive_comments_and_ends_after_the_last_event(acme: httpx.Client) -> None:
    job = acme.post("/v1/pipelines/demo/jobs", json={"items": 1, "seconds": 1.5}).json()
    lines = []
    with acme.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        lines = list(response.iter_lines())  # returns only because the server closes the stream
    assert lines[0] == "retry: 1000"
    assert ": keep-alive" in lines  # the server's keep-alive interval is 0.5 s here; the item sleeps 1.5 s
    assert [line for line in lines if line.startswith("event:")][-1] == "event: job.finished"
