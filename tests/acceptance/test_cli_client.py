"""The CLI (``ingestd submit --follow``, ``jobs``, ``status``, ``result``, ``cancel``) and the Python client
(``ingestd.client``) against a running ``ingestd serve``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from server_process import CuttingProxy, Served, ingestd

from ingestd.client import (
    ApiError,
    AsyncClient,
    Client,
    EventStream,
    Exponential,
    Linear,
    ServerHint,
    WaitTimeout,
)


def _cli(served: Served, *args: str) -> tuple[int, str, str]:
    done = ingestd(*args, "--url", served.server.url, "--api-key", served.keys["acme"])
    return done.returncode, done.stdout, done.stderr


def test_submit_follow_shows_progress_and_prints_the_result(served: Served) -> None:
    body = json.dumps({"items": 4, "seconds": 0.1, "concurrency": 2})
    code, out, err = _cli(served, "submit", "demo", "--input", body, "--follow")
    assert code == 0, err
    assert json.loads(out) == {"ok": [0, 1, 2, 3], "failed": []}
    assert "4/4" in err and "succeeded" in err


def test_submit_with_files_then_status_result_and_jobs(served: Served, tmp_path: Path) -> None:
    data = tmp_path / "notes.txt"
    data.write_bytes(b"twelve bytes")
    code, out, err = _cli(served, "submit", "checksum", str(data), "--input", '{"label": "cli"}')
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] in ("queued", "running", "succeeded") and job["files"][0]["size"] == 12
    with served.client() as client:
        client.get(f"/v1/jobs/{job['id']}", params={"wait": 10})
    code, out, _ = _cli(served, "status", job["id"])
    assert json.loads(out)["id"] == job["id"]
    deadline = time.monotonic() + 20
    while (answer := _cli(served, "result", job["id"]))[0] != 0:
        assert time.monotonic() < deadline, answer
    assert json.loads(answer[1])["files"][0]["name"] == "notes.txt"
    code, out, _ = _cli(served, "jobs", "--pipeline", "checksum", "--limit", "50")
    assert code == 0 and job["id"] in out and "checksum" in out


def test_cli_errors_are_readable(served: Served) -> None:
    code, _, err = _cli(served, "status", "01nosuchjob")
    assert code == 1 and "404" in err and "no job" in err
    code, _, err = _cli(served, "submit", "demo", "--input", "{not json")
    assert code == 2 and "--input is not JSON" in err
    code, out, err = _cli(served, "submit", "demo", "--input", '{"items": 2, "seconds": 5}')
    job_id = json.loads(out)["id"]
    code, out, err = _cli(served, "cancel", job_id)
    assert code == 0 and json.loads(out)["id"] == job_id


def test_client_wait_strategies(served: Served) -> None:
    with Client(served.server.url, api_key=served.keys["acme"]) as client:
        strategies = [ServerHint(), Linear(first=0.2, every=0.2), Exponential(initial=0.05, cap=0.5), EventStream()]
        for strategy in strategies:
            job = client.submit("demo", {"items": 2, "seconds": 0.1})
            done = client.wait(job.id, strategy=strategy, deadline=30)
            assert done.status == "succeeded", strategy
        slow = client.submit("demo", {"items": 1, "seconds": 30})
        with pytest.raises(WaitTimeout) as timed_out:
            client.wait(slow.id, strategy=Linear(first=0.1, every=0.1), deadline=0.5)
        assert timed_out.value.job is not None and timed_out.value.job.status in ("queued", "running")
        client.cancel(slow.id)
        with pytest.raises(ApiError) as refused:
            client.submit("demo", {"items": -5})
        assert refused.value.status == 422 and refused.value.code == "invalid-input"


def test_client_submit_is_idempotent_and_reads_events(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc" * 1000)
    with Client(served.server.url, api_key=served.keys["acme"]) as client:
        first = client.submit("checksum", {"label": "x"}, files=[path], idempotency_key="client-1")
        again = client.submit("checksum", {"label": "x"}, files=[path], idempotency_key="client-1")
        assert first.id == again.id
        events = list(client.events(first.id, deadline=30))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].type == "job.finished"
        later = list(client.events(first.id, after=events[1].seq, deadline=30))
        assert [e.seq for e in later] == [e.seq for e in events[2:]]
        assert client.result(first.id)["files"][0]["size"] == 3000
        client.delete(first.id)
        with pytest.raises(ApiError) as gone:
            client.get(first.id)
        assert gone.value.status == 404


def test_async_client(served: Served) -> None:
    async def go() -> None:
        async with AsyncClient(served.server.url, api_key=served.keys["acme"]) as client:
            job = await client.submit("demo", {"items": 3, "seconds": 0.05}, prefer_wait=0.01)
            seen = [e.type async for e in client.events(job.id)]
            assert seen[-1] == "job.finished" and "job.progress" in seen
            done = await client.wait(job.id, strategy=EventStream(), deadline=10)
            assert done.status == "succeeded"
            assert (await client.result(job.id)) == {"ok": [0, 1, 2], "failed": []}
            page = await client.jobs(pipeline="demo", limit=1)
            assert len(page["jobs"]) == 1 and page["next_cursor"]

    asyncio.run(go())


def test_a_retried_submit_reuses_its_idempotency_key(served: Served) -> None:
    proxy = CuttingProxy(served.server.port, answer_bytes=0)
    direct = Client(served.server.url, api_key=served.keys["globex"])
    try:
        before = len(direct.jobs(pipeline="noop", limit=200)["jobs"])
        with Client(proxy.url, api_key=served.keys["globex"], retries=3) as client:
            job = client.submit("noop", {"note": "lost answer"})
        assert proxy.connections == 2  # the first answer was lost, the client asked again
        listed = direct.jobs(pipeline="noop", limit=200)["jobs"]
        assert len(listed) == before + 1 and listed[0]["id"] == job.id  # one job, not two
    finally:
        direct.close()
        proxy.close()


def test_client_events_resume_after_the_stream_is_cut(served: Served) -> None:
    with Client(served.server.url, api_key=served.keys["acme"]) as direct:
        job = direct.submit("demo", {"items": 4, "seconds": 0.2, "concurrency": 1})
    proxy = CuttingProxy(served.server.port, answer_bytes=700)  # the headers and an event or two, then cut
    try:
        with Client(proxy.url, api_key=served.keys["acme"]) as client:
            events = list(client.events(job.id, deadline=30))
        assert proxy.connections >= 2
        assert [e.seq for e in events] == list(range(1, len(events) + 1))  # each event once, none lost
        assert events[-1].type == "job.finished" and events[-1].data["status"] == "succeeded"
    finally:
        proxy.close()
