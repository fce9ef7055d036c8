"""Reading jobs: status with long-poll and 303, result, cancel, delete, list with cursors, events, pipelines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
from api_support import ApiFactory, assert_problem, finished, parse_sse, submit

from ingestd import errors


async def _first_of(first: asyncio.Task[httpx.Response], second: asyncio.Task[httpx.Response]) -> httpx.Response:
    """The answer of ``first``, which must come back before ``second`` (then cancelled)."""
    done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    second.cancel()
    assert done == {first}, "the other request came back first"
    return first.result()


async def test_status_long_poll_returns_on_a_change(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    job, quiet = [(await submit(api, "noop")).json() for _ in range(2)]
    poll = asyncio.create_task(api.get(f"/v1/jobs/{job['id']}", params={"wait": 60}))
    control = asyncio.create_task(api.get(f"/v1/jobs/{quiet['id']}", params={"wait": 30}))
    assert (await api.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 202  # the change: canceled at once
    seen = (await _first_of(poll, control)).json()  # on the change, not at the end of its (longer) wait
    assert seen["status"] == "canceled"


async def test_long_poll_of_a_quiet_job_waits_then_answers(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    job = (await submit(api, "noop")).json()
    poll = asyncio.create_task(api.get(f"/v1/jobs/{job['id']}", params={"wait": 2}))
    control = asyncio.create_task(api.get(f"/v1/jobs/{job['id']}", params={"wait": 30}))
    assert (await api.get(f"/v1/jobs/{job['id']}")).status_code == 200
    assert not poll.done()  # a plain read sent after the long poll came back first: the long poll waits
    response = await _first_of(poll, control)  # and answers at the end of its own wait
    assert response.json()["status"] == "queued"
    assert 1 <= int(response.headers["retry-after"]) <= 600


async def test_a_finished_job_redirects_to_its_result_when_asked(api: httpx.AsyncClient) -> None:
    job = (await submit(api, body={"items": 1, "seconds": 0}, headers={"Prefer": "wait=10"})).json()
    plain = await api.get(f"/v1/jobs/{job['id']}")
    assert plain.status_code == 200 and "retry-after" not in plain.headers
    assert plain.headers["expires"].endswith("GMT")
    redirect = await api.get(f"/v1/jobs/{job['id']}", params={"redirect": "true"})
    assert redirect.status_code == 303
    assert redirect.headers["location"] == f"/v1/jobs/{job['id']}/result"
    followed = await api.get(f"/v1/jobs/{job['id']}", params={"redirect": "true"}, follow_redirects=True)
    assert followed.json() == {"ok": [0], "failed": []}


async def test_result_of_a_running_job_is_a_problem_with_retry_after(api: httpx.AsyncClient) -> None:
    job = (await submit(api, body={"items": 1, "seconds": 5})).json()
    response = await api.get(f"/v1/jobs/{job['id']}/result")
    problem = assert_problem(response, 409, "job-not-finished")
    assert problem["job_status"] in ("queued", "running")
    assert int(response.headers["retry-after"]) >= 1


async def test_a_failed_item_makes_a_partial_job_naming_the_stage(api: httpx.AsyncClient) -> None:
    job = (await submit(api, body={"items": 3, "seconds": 0, "fail": [1]})).json()
    done = await finished(api, job["id"])
    assert done["status"] == "partial"
    result = (await api.get(f"/v1/jobs/{job['id']}/result")).json()
    assert result["ok"] == [0, 2] and result["failed"] == [1]
    assert result["failed_items"][0]["error"]["stage"] == "work[1]"


async def test_cancel_is_202_idempotent_and_stops_the_job(api: httpx.AsyncClient) -> None:
    job = (await submit(api, body={"items": 4, "seconds": 10, "concurrency": 1})).json()
    while job["status"] == "queued":
        job = (await api.get(f"/v1/jobs/{job['id']}", params={"wait": 0.2})).json()
    assert job["status"] == "running"
    first = await api.post(f"/v1/jobs/{job['id']}/cancel")
    assert first.status_code == 202
    assert first.headers["location"] == f"/v1/jobs/{job['id']}"
    answer = first.json()
    # a queued job is canceled at once; a running one is asked to stop
    assert answer["status"] == "canceled" or answer["cancel_requested"] is True, answer
    again = await api.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 202
    done = await finished(api, job["id"])
    assert done["status"] == "canceled"
    assert done["progress"]["done"] == 0  # the 10 s item was abandoned, not waited for
    assert_problem(await api.get(f"/v1/jobs/{job['id']}/result"), 409, "result-unavailable")
    assert (await api.post(f"/v1/jobs/{job['id']}/cancel")).status_code == 202


async def test_delete_only_finished_jobs_and_their_files(api: httpx.AsyncClient, backend: str) -> None:
    running = (await submit(api, body={"items": 1, "seconds": 10})).json()
    assert_problem(await api.delete(f"/v1/jobs/{running['id']}"), 409)
    files = {"file": ("notes.txt", b"some bytes")}
    upload = await api.post("/v1/pipelines/checksum/jobs", files=files, data={"input": "{}"})
    job = upload.json()
    await finished(api, job["id"])
    store = api.app.state.store  # type: ignore[attr-defined]
    blob = (await store.get_job(job["id"])).files[0].blob
    path = Path(await store.blobs.local_path(blob))
    assert path.read_bytes() == b"some bytes"
    if backend == "postgres":
        path.unlink()  # PostgreSQL gives a temporary copy of the blob
    assert (await api.delete(f"/v1/jobs/{job['id']}")).status_code == 204
    assert_problem(await api.get(f"/v1/jobs/{job['id']}"), 404, "not-found")
    assert_problem(await api.delete(f"/v1/jobs/{job['id']}"), 404)
    with pytest.raises(errors.NotFound):
        await store.blobs.local_path(blob)


async def test_list_filters_and_cursor_pagination(api: httpx.AsyncClient) -> None:
    ids = []
    for _ in range(5):
        ids.append((await submit(api, "noop", headers={"Prefer": "wait=10"})).json()["id"])
    failing = (await submit(api, body={"items": 1, "seconds": 0, "fail": [0]}, headers={"Prefer": "wait=10"})).json()
    seen: list[str] = []
    url: str | None = "/v1/jobs?pipeline=noop&limit=2"
    pages = 0
    while url:
        response = await api.get(url)
        page = response.json()
        seen += [j["id"] for j in page["jobs"]]
        assert all(j["pipeline"] == "noop" for j in page["jobs"])
        url = page.get("links", {}).get("next")
        if url:
            assert response.headers["link"] == f'<{url}>; rel="next"'
        pages += 1
    assert pages == 3
    assert seen == sorted(ids, reverse=True)
    partial = (await api.get("/v1/jobs", params={"status": "partial"})).json()["jobs"]
    assert [j["id"] for j in partial] == [failing["id"]]
    later = (await api.get("/v1/jobs", params={"created_after": "2999-01-01T00:00:00Z"})).json()["jobs"]
    assert later == []
    assert_problem(await api.get("/v1/jobs", params={"cursor": "!!!"}), 422)
    assert_problem(await api.get("/v1/jobs", params={"status": "sleeping"}), 422)


async def test_events_are_a_complete_ordered_sse_stream(api: httpx.AsyncClient) -> None:
    job = (await submit(api, body={"items": 3, "seconds": 0.01})).json()
    await finished(api, job["id"])
    response = await api.get(f"/v1/jobs/{job['id']}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "job.queued" and events[-1]["event"] == "job.finished"
    assert orjson.loads(events[-1]["data"])["data"]["status"] == "succeeded"
    middle = events[len(events) // 2]["id"]
    resumed = parse_sse((await api.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(middle)})).text)
    assert [e["id"] for e in resumed] == [e["id"] for e in events if e["id"] > middle]
    by_query = parse_sse((await api.get(f"/v1/jobs/{job['id']}/events", params={"after": middle})).text)
    assert by_query == resumed
    bad = await api.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "abc"})
    assert_problem(bad, 400)


async def test_pipelines_list_their_input_schemas(api: httpx.AsyncClient) -> None:
    pipelines = {p["name"]: p for p in (await api.get("/v1/pipelines")).json()["pipelines"]}
    assert {"demo", "noop"} <= set(pipelines)
    assert pipelines["demo"]["input_schema"]["properties"]["items"]["type"] == "integer"
    one = (await api.get("/v1/pipelines/demo")).json()
    assert one["links"]["jobs"] == "/v1/pipelines/demo/jobs"
    assert_problem(await api.get("/v1/pipelines/nope"), 404)


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    deadline = time.monotonic() + 10
    while (ready := await api.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, ready.text
        await asyncio.sleep(0.1)
    assert ready.json()["checks"]["workers"]["workers"] >= 1


async def test_not_ready_without_a_worker(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    problem = assert_problem(await api.get("/readyz"), 503, "not-ready")
    assert problem["checks"]["workers"]["ok"] is False


async def test_unknown_routes_and_methods_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/nothing-here"), 404)
    response = await api.put("/v1/jobs")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_retry_after_follows_how_long_the_pipeline_took_per_unit(api_factory: ApiFactory) -> None:
    history = await api_factory()
    for _ in range(3):  # 0.2 s per item, one at a time
        body = {"items": 2, "seconds": 0.2, "concurrency": 1}
        assert (await submit(history, body=body, headers={"Prefer": "wait=20"})).json()["status"] == "succeeded"
    fresh = await api_factory(run_worker=False)  # a new process's estimator: nothing cached yet
    hints = {}
    for items in (1, 100, 100_000):
        answer = await submit(fresh, body={"items": items, "seconds": 0.2, "concurrency": 1})
        hints[items] = int(answer.headers["retry-after"])
        status = await fresh.get(f"/v1/jobs/{answer.json()['id']}")
        assert abs(int(status.headers["retry-after"]) - hints[items]) <= 1
    assert hints[1] == 1  # ~0.2 s, clamped up to 1
    assert 12 <= hints[100] <= 40  # ~20 s expected; the history's timings vary on a busy machine
    assert hints[100_000] == 600  # ~20,000 s, clamped down to 600


async def test_an_unexpected_error_is_a_500_problem_without_internals(api: httpx.AsyncClient) -> None:
    async def broken() -> None:
        raise RuntimeError("secret internals")

    api.app.add_api_route("/v1/broken", broken)  # type: ignore[attr-defined]
    response = await api.get("/v1/broken")
    problem = assert_problem(response, 500, "internal")
    assert "secret" not in response.text
    assert problem["instance"] == "/v1/broken"
