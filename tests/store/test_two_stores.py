"""The store contract across two store instances on one database (two connections, as two processes would be):
competing claimers, idempotency races, lease takeover and wake-ups between them (every backend)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from ingestd import errors
from ingestd.models import JobStatus, NewJob, Progress, Step, utcnow
from ingestd.store import open_store
from ingestd.store.protocol import JobStore


@pytest.fixture
async def other(store: JobStore) -> AsyncIterator[JobStore]:
    """A second store on the same database: its own connections and its own listener."""
    second = await open_store(store.url, migrate=False)
    try:
        yield second
    finally:
        await second.close()


async def _drain(store: JobStore, worker: str, claimed: list[str]) -> None:
    while jobs := await store.claim_jobs(worker, pipelines=None, limit=7, lease_seconds=30):
        claimed.extend(j.id for j in jobs)
        for job in jobs:
            assert await store.finish(job.id, worker, JobStatus.SUCCEEDED)


async def test_competing_claimers_claim_every_job_exactly_once(store: JobStore, other: JobStore) -> None:
    ids = {(await store.submit(NewJob("demo", {"i": i}))).job.id for i in range(120)}
    claimed: list[str] = []
    await asyncio.gather(*(_drain(s, f"w{n}-{i}", claimed) for n, s in enumerate((store, other)) for i in range(2)))
    assert Counter(claimed) == Counter(ids)  # each once, none left behind
    stats = await other.queue_stats()
    assert stats == [] or stats[0]["queued"] == stats[0]["running"] == 0


async def test_idempotent_submits_race_across_connections(store: JobStore, other: JobStore) -> None:
    same = NewJob("demo", {"a": 1}, tenant="t", idempotency_key="k", payload_hash="h")
    outcomes = await asyncio.gather(*(s.submit(same) for _ in range(10) for s in (store, other)))
    assert len({o.job.id for o in outcomes}) == 1 and sum(o.created for o in outcomes) == 1

    def conflicting(i: int) -> NewJob:
        return NewJob("demo", {"a": i}, tenant="t", idempotency_key="k2", payload_hash=f"h{i}")

    results = await asyncio.gather(
        *(s.submit(conflicting(i)) for i, s in enumerate((store, other) * 5)), return_exceptions=True
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1 and made[0].created  # exactly one payload won the key
    assert all(isinstance(r, errors.IdempotencyConflict) for r in results if r is not made[0])
    assert await store.count_queued("t") == 2


async def test_a_lost_lease_stops_the_old_worker_everywhere(store: JobStore, other: JobStore) -> None:
    job_id = (await store.submit(NewJob("demo", {}))).job.id
    await store.claim_jobs("old", pipelines=None, limit=1, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [taken] = await other.claim_jobs("new", pipelines=None, limit=1, lease_seconds=30)
    assert taken.id == job_id and taken.attempt == 2
    step = Step(job_id, "prepare", True, {"by": "old"}, None, 1, utcnow(), utcnow())
    with pytest.raises(errors.LeaseLost):
        await store.save_step(step, "old")
    assert not await store.retry_later(job_id, "old", utcnow(), {"title": "x"})
    await store.set_progress(job_id, "old", Progress("x", 1, 2))
    assert (await store.heartbeat("old", [job_id], 30)).lost == {job_id}
    await store.release("old", [job_id])  # not the holder: nothing happens
    job = await other.get_job(job_id)
    assert job is not None and job.status is JobStatus.RUNNING and job.lease_owner == "new"
    assert job.progress.stage is None
    assert (await other.save_step(step, "new")).output == {"by": "old"}


async def _woken_within(waiter: asyncio.Task[object], seconds: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(waiter, seconds)
    return time.monotonic() - started


async def test_events_wake_a_follower_on_another_connection(
    slow_fallback: float, store: JobStore, other: JobStore
) -> None:
    job_id = (await store.submit(NewJob("demo", {}))).job.id
    waiter = asyncio.create_task(other.wait_for_events(job_id, 1, 30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await store.append_events(job_id, [("job.progress", {"n": 1})])
    await _woken_within(waiter, 5.0)
    assert waiter.result() is True
    assert not await other.wait_for_events(job_id, 2, 0.05)  # nothing newer: times out


async def test_release_and_keyed_finish_wake_workers_on_another_connection(
    slow_fallback: float, store: JobStore, other: JobStore
) -> None:
    first = (await store.submit(NewJob("demo", {}, ordering_key="k"))).job.id
    second = (await store.submit(NewJob("demo", {}, ordering_key="k"))).job.id
    await store.claim_jobs("w", pipelines=None, limit=5, lease_seconds=30)
    waiter = asyncio.create_task(other.wait_for_work(30.0))
    await asyncio.sleep(0.05)
    await store.release("w", [first])
    await _woken_within(waiter, 5.0)
    [again] = await other.claim_jobs("w2", pipelines=None, limit=5, lease_seconds=30)
    assert again.id == first and again.attempt == 1  # a release does not count the attempt

    waiter = asyncio.create_task(store.wait_for_work(30.0))
    await asyncio.sleep(0.05)
    assert await other.finish(first, "w2", JobStatus.SUCCEEDED)  # the key's successor may run now
    await _woken_within(waiter, 5.0)
    assert [j.id for j in await store.claim_jobs("w", pipelines=None, limit=5, lease_seconds=30)] == [second]


async def test_canceled_queued_job_is_never_claimed_elsewhere(store: JobStore, other: JobStore) -> None:
    job_id = (await store.submit(NewJob("demo", {}))).job.id
    canceled = await other.request_cancel(job_id)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    assert await store.claim_jobs("w", pipelines=None, limit=5, lease_seconds=30) == []
    types = [e.type for e in await store.read_events(job_id)]
    assert types == ["job.queued", "job.cancel_requested", "job.finished"]


async def test_a_burst_of_events_wakes_every_follower_on_another_connection(
    slow_fallback: float, store: JobStore, other: JobStore
) -> None:
    ids = [(await store.submit(NewJob("demo", {"i": i}))).job.id for i in range(320)]  # > one NOTIFY payload
    followers = [asyncio.create_task(other.wait_for_events(job_id, 1, 60.0)) for job_id in ids]
    await asyncio.sleep(0.1)
    await asyncio.gather(*(store.append_events(job_id, [("job.progress", {})]) for job_id in ids))
    assert all(await asyncio.wait_for(asyncio.gather(*followers), 15.0))
