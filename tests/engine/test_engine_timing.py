"""Time-bound behaviour of the engine on SQLite and PostgreSQL: per-step timeouts, a provider's Retry-After,
cancellation reaching the worker within one heartbeat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine_helpers import events_of, running_worker, submit, wait_finished
from engine_pipelines import lines

from ingestd.models import JobStatus
from ingestd.store.protocol import JobStore


@asynccontextmanager
async def http_server(answers: list[bytes], seen: list[float]) -> AsyncIterator[str]:
    """A loopback HTTP/1.1 server giving ``answers`` in turn (the last one forever); records request times."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := await reader.readline()) not in (b"\r\n", b""):
            del line  # headers: not needed
        seen.append(time.monotonic())
        writer.write(answers[min(len(seen), len(answers)) - 1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def response(status: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n{headers}\r\n"
    return head.encode() + body


async def test_a_step_past_its_timeout_is_retried_then_fails_the_job(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    job = await submit(store, "hang", {"log": log, "timeout": 0.2, "attempts": 2})
    async with running_worker(store) as worker:
        done = await wait_finished(store, job.id, timeout=20)
        assert worker.running_jobs == []
    assert done.status == JobStatus.FAILED and done.error is not None
    assert done.error["stage"] == "hang" and done.error["attempts"] == 2
    assert "TimeoutError" in done.error["reason"]
    assert lines(log) == [f"{job.id} try hang"] * 2  # each attempt was cut short, never reached its end
    retrying = [e.data for e in await events_of(store, job.id) if e.type == "step.retrying"]
    assert [(r["key"], r["attempt"]) for r in retrying] == [("hang", 1)]


async def test_retry_after_of_a_429_is_honoured(store: JobStore, tmp_path: Path) -> None:
    log, seen = str(tmp_path / "log"), []
    answers = [response("429 Too Many Requests", headers="retry-after: 1\r\n"), response("200 OK", b"fine")]
    async with http_server(answers, seen) as url, running_worker(store):
        job = await submit(store, "http_retry", {"log": log, "url": url})
        done = await wait_finished(store, job.id, timeout=20)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result == {"body": "fine"}
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.95  # the policy alone would have waited at most 0.02 s
    [retrying] = [e.data for e in await events_of(store, job.id) if e.type == "step.retrying"]
    assert retrying["delay"] >= 1.0 and "429" in retrying["reason"]


async def test_a_server_error_is_retried_until_attempts_run_out(store: JobStore, tmp_path: Path) -> None:
    log, seen = str(tmp_path / "log"), []
    async with http_server([response("503 Service Unavailable")], seen) as url, running_worker(store):
        job = await submit(store, "http_retry", {"log": log, "url": url})
        done = await wait_finished(store, job.id, timeout=20)
    assert done.status == JobStatus.FAILED and done.error is not None
    assert done.error["stage"] == "call" and done.error["attempts"] == 3 and "503" in done.error["reason"]
    assert len(seen) == 3 and lines(log) == []


async def test_cancel_reaches_the_worker_within_one_heartbeat(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    heartbeat = 0.5
    job = await submit(store, "once", {"log": log, "seconds": 60})
    async with running_worker(store, heartbeat_seconds=heartbeat) as worker:

        async def running() -> bool:
            return f"{job.id} run" in " ".join(lines(log))

        while not await running():
            await asyncio.sleep(0.02)
        asked = await store.request_cancel(job.id)
        assert asked is not None and asked.cancel_requested and asked.status == JobStatus.RUNNING
        done = await wait_finished(store, job.id, timeout=10)
        assert worker.running_jobs == []
    assert done.status == JobStatus.CANCELED and done.error is not None and done.error["code"] == "canceled"
    # Ended by the worker acting on the request at a heartbeat (wait_finished's 10 s, against the job's own 60 s
    # and a lease that the worker kept renewing), with nothing in between: the request, then the finish.
    types = [e.type for e in await events_of(store, job.id)]
    assert types[-2:] == ["job.cancel_requested", "job.finished"] and types.count("job.started") == 1
    assert not any(" done " in line for line in lines(log))  # the job's code stopped where it was
