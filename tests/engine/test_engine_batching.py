"""What the throughput work must not break, on SQLite and PostgreSQL: writes grouped into one commit fail one by
one, and a worker never runs more jobs at once than its concurrency, though a finishing job frees its slot early."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine_helpers import running_worker, submit, wait_finished
from engine_pipelines import lines

from ingestd import errors
from ingestd.models import JobStatus, NewJob, SubmitOutcome
from ingestd.store.protocol import JobStore


async def test_a_failing_write_among_concurrent_ones_fails_alone(store: JobStore) -> None:
    await store.submit(NewJob(pipeline="noop", input={"a": 1}, idempotency_key="k", payload_hash="one"))
    plain = [store.submit(NewJob(pipeline="noop", input={"i": i})) for i in range(10)]
    conflict = store.submit(NewJob(pipeline="noop", input={"a": 2}, idempotency_key="k", payload_hash="two"))
    results = await asyncio.gather(*plain[:5], conflict, *plain[5:], return_exceptions=True)
    assert isinstance(results[5], errors.IdempotencyConflict)
    created = [r for r in results if isinstance(r, SubmitOutcome)]
    assert len(created) == 10 and all(r.created for r in created)
    for outcome in created:  # committed, each with its own first event
        job = await store.get_job(outcome.job.id)
        assert job is not None and job.status == JobStatus.QUEUED
        assert [(e.seq, e.type) for e in await store.read_events(job.id)] == [(1, "job.queued")]


async def test_a_worker_runs_at_most_its_concurrency(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    jobs = [await submit(store, "once", {"log": log, "seconds": 0.2, "tag": str(i)}) for i in range(8)]
    async with running_worker(store, worker_concurrency=3):
        done = [await wait_finished(store, job.id) for job in jobs]
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    changes = sorted((float(line.split()[3]), +1 if line.split()[1] == "run" else -1) for line in lines(log))
    running, peak = 0, 0
    for _, change in changes:
        running += change
        peak = max(peak, running)
    assert peak == 3  # all three slots used, never a fourth job
