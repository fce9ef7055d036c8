"""The store contract: every write of a worker is fenced by its lease of one execution (worker AND attempt).

The hole this closes: a worker cut off from the store past its lease claims the same job again when it comes
back (its own expired lease is the first thing it sees), so the job runs under the same ``lease_owner`` with a
new attempt; the earlier execution, still running in that process, must not write any more.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ingestd import errors
from ingestd.models import JobStatus, NewJob, Progress, Step, utcnow
from ingestd.store.protocol import JobStore


async def _reclaimed(store: JobStore) -> str:
    """A job claimed by w1 (attempt 1), its lease run out, claimed again by w1 (attempt 2)."""
    job_id = (await store.submit(NewJob(pipeline="demo", input={}, max_attempts=5))).job.id
    [first] = await store.claim_jobs("w1", pipelines=None, limit=1, lease_seconds=0.05)
    assert first.attempt == 1
    await asyncio.sleep(0.1)
    [second] = await store.claim_jobs("w1", pipelines=None, limit=1, lease_seconds=30)
    assert (second.id, second.attempt, second.lease_owner) == (job_id, 2, "w1")
    return job_id


def _step(job_id: str, key: str) -> Step:
    now = utcnow()
    return Step(job_id, key, True, {"k": key}, None, 1, now - timedelta(seconds=1), now)


async def test_the_earlier_execution_of_the_same_worker_writes_nothing(store: JobStore) -> None:
    job_id = await _reclaimed(store)
    before = [e.seq for e in await store.read_events(job_id)]
    with pytest.raises(errors.LeaseLost):
        await store.save_step(_step(job_id, "a"), "w1", [("step.finished", {"key": "a"})], attempt=1)
    with pytest.raises(errors.LeaseLost):
        await store.append_events(job_id, [("step.started", {"key": "b"})], worker_id="w1", attempt=1)
    await store.set_progress(job_id, "w1", Progress("work", 1, 2), attempt=1)
    assert not await store.retry_later(job_id, "w1", utcnow(), {"code": "x"}, attempt=1)
    assert not await store.finish(job_id, "w1", JobStatus.SUCCEEDED, result={"stale": True}, attempt=1)
    # Nothing of attempt 1 landed: no step, no event, the job still runs under attempt 2.
    assert await store.load_steps(job_id) == {}
    assert [e.seq for e in await store.read_events(job_id)] == before
    job = await store.get_job(job_id)
    assert job is not None and job.status is JobStatus.RUNNING and job.attempt == 2 and job.progress.stage is None
    # The current execution writes as usual.
    await store.append_events(job_id, [("step.started", {"key": "a"})], worker_id="w1", attempt=2)
    await store.save_step(_step(job_id, "a"), "w1", [("step.finished", {"key": "a"})], attempt=2)
    assert await store.finish(job_id, "w1", JobStatus.SUCCEEDED, result={"ok": True}, attempt=2)
    assert list(await store.load_steps(job_id)) == ["a"]


async def test_another_workers_late_writes_are_refused(store: JobStore) -> None:
    job_id = (await store.submit(NewJob(pipeline="demo", input={}))).job.id
    await store.claim_jobs("w1", pipelines=None, limit=1, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [taken] = await store.claim_jobs("w2", pipelines=None, limit=1, lease_seconds=30)
    assert taken.attempt == 2
    with pytest.raises(errors.LeaseLost):
        await store.append_events(job_id, [("step.started", {"key": "a"})], worker_id="w1", attempt=1)
    with pytest.raises(errors.LeaseLost):
        await store.save_step(_step(job_id, "a"), "w1", attempt=1)
    assert not await store.finish(job_id, "w1", JobStatus.FAILED, error={"code": "stale"}, attempt=1)
    assert await store.load_steps(job_id) == {}


async def test_unfenced_events_still_append(store: JobStore) -> None:
    job_id = (await store.submit(NewJob(pipeline="demo", input={}))).job.id
    [event] = await store.append_events(job_id, [("note", {"n": 1})])
    assert event.seq == 2
