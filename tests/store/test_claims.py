"""The store contract: claims, leases, ordering keys, finishing (every backend)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ingestd.models import JobStatus, NewJob, Progress, utcnow
from ingestd.store import open_store, records
from ingestd.store.protocol import JobStore


async def _submit(store: JobStore, **fields: object) -> str:
    return (await store.submit(NewJob(**{"pipeline": "demo", "input": {}, **fields}))).job.id  # type: ignore[arg-type]


async def _claim(store: JobStore, worker: str = "w", limit: int = 10, lease: float = 30, **kw: object) -> list[str]:
    pipelines = kw.get("pipelines")
    jobs = await store.claim_jobs(worker, pipelines=pipelines, limit=limit, lease_seconds=lease)  # type: ignore[arg-type]
    return [j.id for j in jobs]


async def test_claim_marks_running_with_a_lease(store: JobStore) -> None:
    job_id = await _submit(store, deadline_seconds=60)
    [job] = await store.claim_jobs("w1", pipelines=None, limit=5, lease_seconds=30)
    assert job.id == job_id and job.status is JobStatus.RUNNING and job.attempt == 1
    assert job.lease_owner == "w1" and job.lease_expires_at is not None and job.started_at is not None
    assert job.deadline_at is not None and job.deadline_at > job.started_at
    assert await _claim(store, "w2") == []
    events = await store.read_events(job_id)
    assert [(e.seq, e.type) for e in events] == [(1, "job.queued"), (2, "job.started")]
    assert events[1].data["attempt"] == 1


async def test_priority_then_age_and_pipelines_filter(store: JobStore) -> None:
    low = await _submit(store)
    high = await _submit(store, priority=5)
    later = await _submit(store)
    other = await _submit(store, pipeline="other")
    assert await _claim(store, limit=2, pipelines=["demo"]) == [high, low]
    assert await _claim(store, pipelines=["demo"]) == [later]
    assert await _claim(store) == [other]


async def test_run_at_in_the_future_waits(store: JobStore) -> None:
    await _submit(store, run_at=utcnow() + timedelta(hours=1))
    due = await _submit(store, run_at=utcnow() - timedelta(seconds=1))
    assert await _claim(store) == [due]
    assert await _claim(store) == []


async def test_ordering_key_one_at_a_time_in_submission_order(store: JobStore) -> None:
    a1 = await _submit(store, ordering_key="user-a")
    a2 = await _submit(store, ordering_key="user-a", priority=9)  # priority never jumps the key's order
    b1 = await _submit(store, ordering_key="user-b")
    free = await _submit(store)
    assert sorted(await _claim(store)) == sorted([a1, b1, free])
    assert await _claim(store) == []  # a2 waits for a1
    assert await store.finish(a1, "w", JobStatus.FAILED, error={"title": "x"})
    assert await _claim(store) == [a2]


async def test_ordering_key_blocked_by_an_earlier_delayed_job(store: JobStore) -> None:
    first = await _submit(store, ordering_key="k", run_at=utcnow() + timedelta(hours=1))
    await _submit(store, ordering_key="k")
    assert await _claim(store) == []
    assert (await store.request_cancel(first)) is not None
    assert len(await _claim(store)) == 1


async def test_expired_lease_is_taken_over(store: JobStore) -> None:
    job_id = await _submit(store)
    assert await _claim(store, "dead", lease=0.05) == [job_id]
    await asyncio.sleep(0.1)
    [job] = await store.claim_jobs("alive", pipelines=None, limit=5, lease_seconds=30)
    assert job.id == job_id and job.attempt == 2 and job.lease_owner == "alive"
    assert not await store.finish(job_id, "dead", JobStatus.SUCCEEDED)  # the old worker lost it
    beat = await store.heartbeat("dead", [job_id], 30)
    assert beat.lost == {job_id}
    assert await store.finish(job_id, "alive", JobStatus.SUCCEEDED, result={"n": 1}, usage={"tokens": 3})
    done = await store.get_job(job_id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.result == {"n": 1}
    assert done.usage == {"tokens": 3} and done.lease_owner is None


async def test_attempts_exhausted_on_expiry_fails_the_job(store: JobStore) -> None:
    job_id = await _submit(store, max_attempts=1, webhook_url="http://127.0.0.1:9/hook")
    assert await _claim(store, "dead", lease=0.05) == [job_id]
    await asyncio.sleep(0.1)
    assert await _claim(store, "alive") == []
    job = await store.get_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED and job.error is not None
    assert job.error == records.exhausted_error(1) and job.finished_at is not None  # the same body on both
    events = await store.read_events(job_id)
    assert events[-1].type == "job.finished" and events[-1].data == {"status": "failed"}


async def test_heartbeat_extends_and_reports(store: JobStore) -> None:
    job_id = await _submit(store)
    await _claim(store, "w", lease=0.2)
    beat = await store.heartbeat("w", [job_id, "gone"], 30)
    assert beat.lost == {"gone"} and beat.cancel_requested == frozenset()
    await asyncio.sleep(0.3)
    assert await _claim(store, "other") == []  # the heartbeat extended the lease
    workers = await store.live_workers(60)
    assert [(w["id"], w["jobs"]) for w in workers] == [("w", 1)]


async def test_release_requeues_without_counting_the_attempt(store: JobStore) -> None:
    job_id = await _submit(store)
    await _claim(store, "w")
    await store.release("w", [job_id])
    [job] = await store.claim_jobs("w2", pipelines=None, limit=5, lease_seconds=30)
    assert job.id == job_id and job.attempt == 1
    assert "job.released" in [e.type for e in await store.read_events(job_id)]
    await store.release("not-the-owner", [job_id])
    assert (await store.get_job(job_id)).status is JobStatus.RUNNING  # type: ignore[union-attr]


async def test_finish_is_compare_and_set(store: JobStore) -> None:
    job_id = await _submit(store)
    assert not await store.finish(job_id, "w", JobStatus.SUCCEEDED)  # still queued
    await _claim(store, "w")
    assert not await store.finish(job_id, "intruder", JobStatus.SUCCEEDED)
    assert await store.finish(job_id, "w", JobStatus.PARTIAL, result={"ok": [0], "failed": [1]})
    assert not await store.finish(job_id, "w", JobStatus.FAILED)
    job = await store.get_job(job_id)
    assert job is not None and job.status is JobStatus.PARTIAL and job.expires_at is not None
    assert (await store.request_cancel(job_id)) == job


async def test_retry_later_and_progress(store: JobStore) -> None:
    job_id = await _submit(store)
    await _claim(store, "w")
    await store.set_progress(job_id, "w", Progress("work", 2, 5))
    await store.set_progress(job_id, "intruder", Progress("evil", 9, 9))
    job = await store.get_job(job_id)
    assert job is not None and job.progress == Progress("work", 2, 5)
    assert await store.retry_later(job_id, "w", utcnow() + timedelta(hours=1), {"title": "later"})
    assert not await store.retry_later(job_id, "w", utcnow(), {"title": "again"})
    job = await store.get_job(job_id)
    assert job is not None and job.status is JobStatus.QUEUED and job.error == {"title": "later"}
    assert await _claim(store) == []


async def test_queue_stats_and_recent_durations(store: JobStore) -> None:
    for _ in range(3):
        await _submit(store, units=10.0)
    await _submit(store, pipeline="other")
    [first] = await _claim(store, limit=1, pipelines=["demo"])
    stats = {s["pipeline"]: s for s in await store.queue_stats()}
    assert (stats["demo"]["queued"], stats["demo"]["running"]) == (2, 1)
    assert stats["other"]["queued"] == 1 and stats["demo"]["oldest_queued_age"] >= 0
    assert await store.finish(first, "w", JobStatus.SUCCEEDED)
    [(units, seconds)] = await store.recent_durations("demo")
    job = await store.get_job(first)
    assert job is not None and job.started_at is not None and job.finished_at is not None
    assert units == 10.0 and seconds == pytest.approx((job.finished_at - job.started_at).total_seconds(), abs=1e-3)


async def test_used_up_jobs_are_failed_even_while_every_claim_is_full(store: JobStore) -> None:
    dead = await _submit(store, max_attempts=1)
    assert await _claim(store, "dead", lease=0.05) == [dead]
    for _ in range(20):
        await _submit(store)
    await asyncio.sleep(0.1)
    for _ in range(15):  # each claim takes one of the queued jobs: the queue never looks empty
        assert len(await _claim(store, "busy", limit=1)) == 1
        job = await store.get_job(dead)
        assert job is not None
        if job.status is JobStatus.FAILED:
            break
        await asyncio.sleep(0.2)
    assert job.status is JobStatus.FAILED and job.error is not None and job.error["code"] == "attempts-exhausted"


async def test_sqlite_writes_that_waited_for_the_lock_are_stamped_when_they_ran(tmp_path: Path) -> None:
    """Times are read once the write lock is held: a claim queued behind another process's transaction must not
    seem to start before what that transaction committed (a same-key job's finish, say). PostgreSQL needs no
    test: each statement reads ``now()`` when it starts and sees only what committed before that."""
    path = tmp_path / "ingestd.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        job_id = await _submit(store)
        other = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
        other.execute("BEGIN IMMEDIATE")
        claim = asyncio.create_task(_claim(store))
        await asyncio.sleep(0.3)
        assert not claim.done()  # it waits for the lock
        released_at = time.time()
        other.execute("COMMIT")
        other.close()
        assert await claim == [job_id]
        started = (await store.read_events(job_id))[-1]
        assert started.type == "job.started" and started.at.timestamp() >= released_at
    finally:
        await store.close()
