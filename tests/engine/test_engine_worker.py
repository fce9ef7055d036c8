"""The worker and runner in process, on SQLite and PostgreSQL: outcomes, retries, events, cancel, deadline."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import asyncpg
from engine_helpers import events_of, running_worker, submit, wait_finished, wait_until
from engine_pipelines import lines

from ingestd.models import JobStatus
from ingestd.store import sqlite_path
from ingestd.store.protocol import JobStore


async def test_demo_succeeds_and_its_events_tell_the_story(store: JobStore) -> None:
    job = await submit(store, "demo", {"items": 3, "seconds": 0.01})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.result == {"ok": [0, 1, 2], "failed": []}
    assert done.progress.stage == "work" and (done.progress.done, done.progress.total) == (3, 3)
    events = await events_of(store, job.id)
    types = [e.type for e in events]
    assert types[:4] == ["job.queued", "job.started", "step.started", "step.finished"]
    assert types[-1] == "job.finished" and events[-1].data.get("status") == "succeeded"
    started = [e.data["key"] for e in events if e.type == "step.started"]
    finished = [e.data["key"] for e in events if e.type == "step.finished"]
    assert sorted(started) == sorted(finished) == ["collect", "prepare", "work[0]", "work[1]", "work[2]"]
    assert "job.progress" in types
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_failed_items_make_the_job_partial_and_are_listed(store: JobStore) -> None:
    job = await submit(store, "demo", {"items": 4, "seconds": 0, "fail": [1, 3]})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.PARTIAL
    assert done.result is not None
    assert (done.result["ok"], done.result["failed"]) == ([0, 2], [1, 3])
    failed = done.result["failed_items"]
    assert [(f["key"], f["index"]) for f in failed] == [("work[1]", 1), ("work[3]", 3)]
    assert failed[0]["error"]["stage"] == "work[1]" and "asked to fail" in failed[0]["error"]["reason"]
    steps = await store.load_steps(job.id)
    assert steps["work[1]"].ok is False and steps["work[0]"].ok is True
    item_failed = [e.data for e in await events_of(store, job.id) if e.type == "item.failed"]
    assert sorted(d["key"] for d in item_failed) == ["work[1]", "work[3]"]


async def test_transient_failures_retry_then_succeed(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    job = await submit(store, "count", {"log": log, "items": 3, "flaky": {"1": 2}, "attempts": 3})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result == {"ok": [0, 1, 2], "failed": []}
    events = await events_of(store, job.id)
    retrying = [e.data for e in events if e.type == "step.retrying"]
    assert [(r["key"], r["attempt"]) for r in retrying] == [("work[1]", 1), ("work[1]", 2)]
    assert all(r["delay"] >= 0 and "TransientError" in r["reason"] for r in retrying)
    finished = {e.data["key"]: e.data for e in events if e.type == "step.finished"}
    assert finished["work[1]"]["attempts"] == 3
    assert lines(log).count(f"{job.id} end work[1]") == 1


async def test_transient_failures_retry_then_fail_the_item(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    job = await submit(store, "count", {"log": log, "items": 3, "always_transient": [2], "attempts": 3})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.PARTIAL
    assert done.result is not None
    [failed] = done.result["failed_items"]
    assert failed["key"] == "work[2]" and failed["error"]["cause"] == "transient"
    assert failed["error"]["attempts"] == 3
    assert lines(log).count(f"{job.id} try work[2]") == 3
    assert (await store.load_steps(job.id))["work[2]"].ok is False


async def test_invalid_input_fails_naming_the_input_stage(store: JobStore) -> None:
    job = await submit(store, "demo", {"items": "many"})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.FAILED
    assert done.error is not None
    assert done.error["stage"] == "input" and done.error["code"] == "invalid-input"
    assert done.error["errors"][0]["loc"] == ["items"] or done.error["errors"][0]["loc"] == ("items",)


async def test_pipeline_bugs_fail_the_job_not_the_worker(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    outside = await submit(store, "bug", {"log": log})
    inside = await submit(store, "bug_in_step", {"log": log})
    async with running_worker(store, worker_concurrency=1) as worker:
        first = await wait_finished(store, outside.id)
        second = await wait_finished(store, inside.id)
        after = await submit(store, "once", {"log": log})
        third = await wait_finished(store, after.id)
        assert worker.running_jobs == []
    assert first.status == JobStatus.FAILED and first.error is not None
    assert first.error["stage"] == "pipeline" and "KeyError" in first.error["reason"]
    assert second.status == JobStatus.FAILED and second.error is not None
    assert second.error["stage"] == "divide" and "ZeroDivisionError" in second.error["reason"]
    assert second.error["type"].startswith("https://") and second.error["title"]
    assert third.status == JobStatus.SUCCEEDED


async def test_usage_is_added_up_per_stage_and_overall(store: JobStore, tmp_path: Path) -> None:
    job = await submit(store, "usage", {"log": str(tmp_path / "log")})
    async with running_worker(store):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.usage["total"] == {"calls": 3, "tokens_in": 30, "tokens_out": 6}
    assert done.usage["stages"]["ask"]["llm"]["calls"] == 3
    assert (await store.load_steps(job.id))["ask[0]"].usage == {"llm": {"calls": 1, "tokens_in": 10, "tokens_out": 2}}


async def test_deadline_fails_the_job_and_stops_its_work(store: JobStore) -> None:
    job = await submit(store, "demo", {"items": 2, "seconds": 30}, deadline_seconds=0.5)
    async with running_worker(store) as worker:
        done = await wait_finished(store, job.id, timeout=10)

        async def let_go() -> bool:  # it finishes the job in the store first, then forgets it
            return worker.running_jobs == []

        await wait_until(let_go, what="the worker to let go of the job")
    assert done.status == JobStatus.FAILED and done.error is not None
    assert done.error["code"] == "deadline-exceeded"
    assert done.progress.done == 0  # the 30 s items were stopped, not waited for
    assert not [key for key in await store.load_steps(job.id) if key.startswith("work[")]


async def test_cancel_stops_the_in_flight_call(store: JobStore, tmp_path: Path) -> None:
    connected, disconnected = asyncio.Event(), asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        while await reader.read(1024):  # until the client goes away
            pass
        disconnected.set()
        writer.close()

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    log = str(tmp_path / "log")
    job = await submit(store, "slow_call", {"log": log, "url": f"http://127.0.0.1:{port}/slow"})
    async with server, running_worker(store) as worker:
        await asyncio.wait_for(connected.wait(), 10)
        await store.request_cancel(job.id)
        done = await wait_finished(store, job.id, timeout=5)
        await asyncio.wait_for(disconnected.wait(), 5)  # the HTTP call was abandoned, not left running
        await asyncio.sleep(0.3)
        assert worker.running_jobs == []
        assert not [t for t in asyncio.all_tasks() if t.get_name() == f"job {job.id}"]
    assert done.status == JobStatus.CANCELED
    assert lines(log) == [f"{job.id} calling"]  # the code after the call never ran


async def test_ordering_key_runs_one_at_a_time_in_submission_order(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    jobs = [
        await submit(store, "once", {"log": log, "seconds": 0.1, "tag": str(i)}, ordering_key="u1") for i in range(3)
    ]
    async with running_worker(store, worker_concurrency=4):
        for job in jobs:
            assert (await wait_finished(store, job.id)).status == JobStatus.SUCCEEDED
    rows = [line.split() for line in lines(log)]
    assert [(r[1], r[2]) for r in rows] == [
        ("run", "0"),
        ("done", "0"),
        ("run", "1"),
        ("done", "1"),
        ("run", "2"),
        ("done", "2"),
    ]


async def test_stop_releases_running_jobs_for_another_worker(store: JobStore, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "log"), tmp_path / "gate"
    job = await submit(store, "count", {"log": log, "items": 3, "gate": str(gate), "gate_from": 1})
    async with running_worker(store, worker_id="first", lease_seconds=30) as first:

        async def item_waiting() -> bool:
            return f"{job.id} try work[2]" in lines(log)

        await wait_until(item_waiting, what="work[2] to start")
        await first.stop(grace=0.1)
    again = await store.get_job(job.id)
    assert again is not None and again.status == JobStatus.QUEUED
    gate.touch()
    async with running_worker(store, worker_id="second", lease_seconds=30):
        done = await wait_finished(store, job.id, timeout=10)
    assert done.status == JobStatus.SUCCEEDED
    assert lines(log).count(f"{job.id} end work[0]") == 1  # checkpointed before the hand-over: not run again
    assert lines(log).count(f"{job.id} end prepare") == 1


async def _lease_runs_out(url: str, job_id: str) -> None:
    """The lease of the job's first execution ends now (as when its heartbeats came late on a loaded machine)."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(sqlite_path(url), timeout=10)) as conn, conn:
            conn.execute("UPDATE jobs SET lease_expires_at = 0 WHERE id = ? AND attempt = 1", (job_id,))
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE jobs SET lease_expires_at = now() - interval '1 s' WHERE id = $1 AND attempt = 1", job_id
        )
    finally:
        await conn.close()


async def test_a_job_the_worker_claims_again_runs_once_there(store: JobStore, tmp_path: Path) -> None:
    """Its lease ran out and this same worker's claim took it back: the older execution stops at once (its work is
    not done twice), and the newer one keeps its heartbeats (its lease holds while it works: no third attempt)."""
    log, gate = str(tmp_path / "log"), tmp_path / "gate"
    job = await submit(store, "count", {"log": log, "items": 1, "gate": str(gate), "seconds": 0.8})
    async with running_worker(store, lease_seconds=0.5, heartbeat_seconds=0.15, poll_seconds=0.05) as worker:

        async def tries(n: int) -> bool:
            return lines(log).count(f"{job.id} try work[0]") >= n

        await wait_until(lambda: tries(1), what="the first execution's work[0]")

        async def claimed_again() -> bool:
            await _lease_runs_out(store.url, job.id)  # again until the claim wins over a heartbeat
            return await tries(2)

        await wait_until(claimed_again, what="the second execution's work[0]")
        gate.touch()
        done = await wait_finished(store, job.id)

        async def let_go() -> bool:  # the entry goes just after the job's end is written: waited for, not raced
            return worker.running_jobs == []

        await wait_until(let_go, what="the worker to let go of the finished job (no execution left running)")
    assert done.status == JobStatus.SUCCEEDED and done.attempt == 2
    assert lines(log).count(f"{job.id} end work[0]") == 1  # the first execution did not finish it too
