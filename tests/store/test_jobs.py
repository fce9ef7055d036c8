"""The store contract: submitting, reading, listing, idempotency, cancel, delete (every backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from ingestd import errors
from ingestd.models import JobFilter, JobStatus, NewJob, StoredFile, utcnow
from ingestd.store.protocol import JobStore


async def test_submit_then_get(store: JobStore) -> None:
    files = (StoredFile("a.wav", "0" * 32, 3, "audio/wav", {"sample_rate": 16000}),)
    outcome = await store.submit(NewJob("demo", {"items": 2}, tenant="t1", files=files, units=4.5, priority=3))
    assert outcome.created
    job = outcome.job
    assert job.status is JobStatus.QUEUED
    assert (job.tenant, job.pipeline, job.input, job.files, job.units, job.priority) == (
        "t1", "demo", {"items": 2}, files, 4.5, 3
    )  # fmt: skip
    assert job.attempt == 0 and job.max_attempts == 5 and not job.cancel_requested
    assert await store.get_job(job.id) == job
    assert await store.get_job(job.id, tenant="t1") == job
    assert await store.get_job(job.id, tenant="other") is None
    assert await store.get_job("nope") is None
    events = await store.read_events(job.id)
    assert [(e.seq, e.type) for e in events] == [(1, "job.queued")]


async def test_list_filters_and_cursor_pagination(store: JobStore) -> None:
    ids = [(await store.submit(NewJob("demo", {"i": i}, tenant="t1"))).job.id for i in range(7)]
    other = (await store.submit(NewJob("other", {}, tenant="t1"))).job.id
    await store.submit(NewJob("demo", {}, tenant="t2"))
    seen, cursor = [], None
    while True:
        page = await store.list_jobs(JobFilter(tenant="t1", pipeline="demo"), limit=3, cursor=cursor)
        seen += [j.id for j in page.jobs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))  # newest first, each once
    everything = await store.list_jobs(JobFilter(tenant="t1"), limit=100)
    assert everything.jobs[0].id == other and everything.next_cursor is None
    assert len((await store.list_jobs(JobFilter(), limit=100)).jobs) == 9
    assert (await store.list_jobs(JobFilter(status=JobStatus.RUNNING))).jobs == []
    past = utcnow() - timedelta(hours=1)
    assert len((await store.list_jobs(JobFilter(tenant="t2", created_after=past))).jobs) == 1
    assert (await store.list_jobs(JobFilter(tenant="t2", created_before=past))).jobs == []
    assert await store.count_queued("t1") == 8
    with pytest.raises(errors.InvalidInput):
        await store.list_jobs(JobFilter(), cursor="%%%")


async def test_idempotency(store: JobStore) -> None:
    new = NewJob("demo", {"a": 1}, tenant="t1", idempotency_key="k", payload_hash="h1")
    first = await store.submit(new)
    again = await store.submit(new)
    assert first.created and not again.created and again.job.id == first.job.id
    other_tenant = await store.submit(NewJob("demo", {"a": 1}, tenant="t2", idempotency_key="k", payload_hash="h1"))
    assert other_tenant.created and other_tenant.job.id != first.job.id
    with pytest.raises(errors.IdempotencyConflict):
        await store.submit(NewJob("demo", {"a": 2}, tenant="t1", idempotency_key="k", payload_hash="h2"))


async def test_concurrent_identical_submits_make_one_job(store: JobStore) -> None:
    new = NewJob("demo", {"a": 1}, tenant="t1", idempotency_key="same", payload_hash="h")
    outcomes = await asyncio.gather(*(store.submit(new) for _ in range(50)))
    assert len({o.job.id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1
    assert await store.count_queued("t1") == 1


async def test_cancel_queued_running_terminal(store: JobStore) -> None:
    queued = (await store.submit(NewJob("demo", {}, tenant="t1"))).job
    canceled = await store.request_cancel(queued.id, tenant="t1")
    assert canceled is not None and canceled.status is JobStatus.CANCELED and canceled.finished_at is not None
    assert [e.type for e in await store.read_events(queued.id)][-1] == "job.finished"
    assert await store.request_cancel(queued.id) == canceled  # idempotent, terminal unchanged

    running = (await store.submit(NewJob("demo", {}))).job
    assert [j.id for j in await store.claim_jobs("w", pipelines=None, limit=5, lease_seconds=30)] == [running.id]
    asked = await store.request_cancel(running.id)
    assert asked is not None and asked.status is JobStatus.RUNNING and asked.cancel_requested
    again = await store.request_cancel(running.id)
    assert again is not None and again.cancel_requested
    types = [e.type for e in await store.read_events(running.id)]
    assert types.count("job.cancel_requested") == 1
    beat = await store.heartbeat("w", [running.id], 30)
    assert beat.cancel_requested == {running.id} and not beat.lost
    assert await store.finish(running.id, "w", JobStatus.CANCELED)
    assert await store.request_cancel("missing") is None
    assert await store.request_cancel(running.id, tenant="someone-else") is None


async def test_delete_only_finished_jobs(store: JobStore) -> None:
    job = (await store.submit(NewJob("demo", {}, tenant="t1"))).job
    await store.claim_jobs("w", pipelines=None, limit=1, lease_seconds=30)
    with pytest.raises(errors.JobNotFinished):
        await store.delete_job(job.id)
    assert await store.finish(job.id, "w", JobStatus.SUCCEEDED, result={"ok": True})
    assert await store.delete_job(job.id, tenant="t2") is None
    deleted = await store.delete_job(job.id, tenant="t1")
    assert deleted is not None and deleted.id == job.id
    assert await store.get_job(job.id) is None
    assert await store.read_events(job.id) == []
    assert await store.delete_job(job.id) is None


async def test_purge_expired_deletes_jobs_and_blobs(store: JobStore) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"abc"

    ref, size = await store.blobs.put(body())
    files = (StoredFile("f", ref, size),)
    old = (await store.submit(NewJob("demo", {}, files=files, retention_seconds=0))).job
    kept = (await store.submit(NewJob("demo", {}))).job
    await store.claim_jobs("w", pipelines=None, limit=2, lease_seconds=30)
    for job in (old, kept):
        assert await store.finish(job.id, "w", JobStatus.SUCCEEDED)
    finished = await store.get_job(old.id)
    assert finished is not None and finished.expires_at is not None
    assert await store.purge_expired(utcnow() + timedelta(seconds=1)) == 1
    assert await store.get_job(old.id) is None
    assert await store.get_job(kept.id) is not None
    with pytest.raises(errors.NotFound):
        await store.blobs.local_path(ref)
