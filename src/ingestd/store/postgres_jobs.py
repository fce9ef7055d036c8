"""The PostgreSQL store's job transitions (a mixin of ``PostgresJobStore``).

The hot path (submit, claim, heartbeat, save_step, finish, append_events) is one statement each from
``postgres_sql``: one round trip, atomic without BEGIN/COMMIT, planned once per pooled connection (asyncpg caches
prepared statements). Cancel, delete and purge are rarer and read-then-write, so they run in a transaction that
locks the job row first. After each commit that matters, ``_wake`` wakes workers and followers (``postgres_listen``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg

from ingestd import errors
from ingestd.batching import Batcher, Outcome
from ingestd.models import (
    JSON,
    Job,
    JobStatus,
    NewJob,
    Progress,
    Step,
)
from ingestd.store import postgres_blobs, records
from ingestd.store import postgres_sql as sql
from ingestd.store.postgres_base import PostgresBase
from ingestd.store.records import dumps
from ingestd.store.shared import Appended, Encoded

_PURGE_BATCH = 500
_EXHAUSTED_EVERY_SECONDS = 1.0
_EMPTY = "{}"


class PostgresJobs(PostgresBase):
    """``JobStore``'s writes on PostgreSQL."""

    _exhausted_due = 0.0  # when claim_jobs next fails used-up expired jobs even if it claimed some

    async def _submit(self, new: NewJob, job_id: str) -> tuple[Sequence[Any], bool]:
        args = (
            new.tenant, new.pipeline, dumps(new.input), records.encode_files(new.files), new.max_attempts,
            new.priority, new.run_at, new.ordering_key, new.idempotency_key, new.payload_hash, new.deadline_seconds,
            new.retention_seconds, new.webhook_url, new.units, dumps({"pipeline": new.pipeline}), new.traceparent,
        )  # fmt: skip
        for _ in range(3):  # only loops if the existing job is deleted between the two statements
            row = await self._fetchrow(sql.SUBMIT, job_id, *args)
            if row is not None:
                self._wake(work=True, jobs=[job_id])
                return row, True
            existing = await self._fetchrow(sql.BY_IDEMPOTENCY_KEY, new.tenant, new.idempotency_key)
            if existing is not None:
                return existing, False
        raise errors.StoreError("the job with this Idempotency-Key kept disappearing; try again")

    async def delete_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        async with self._acquire() as conn, conn.transaction():
            lock = await conn.fetchrow(sql.LOCK_JOB, job_id, tenant)
            if lock is None:
                return None
            if not JobStatus(lock["status"]).terminal:
                raise errors.JobNotFinished(job_id=job_id)
            row = await conn.fetchrow(sql.GET_JOB, job_id, None)
            await conn.execute(sql.DELETE_CHILDREN, [job_id])
            await conn.execute("DELETE FROM jobs WHERE id = $1", job_id)
            job = records.job_from_row(row)
            await postgres_blobs.delete_refs(conn, [f.blob for f in job.files])
        return job

    async def request_cancel(self, job_id: str, tenant: str | None = None) -> Job | None:
        async with self._acquire() as conn, conn.transaction():
            lock = await conn.fetchrow(sql.LOCK_JOB, job_id, tenant)
            if lock is None:
                return None
            queued = lock["status"] == JobStatus.QUEUED
            changed = queued or (lock["status"] == JobStatus.RUNNING and not lock["cancel_requested"])
            if changed:
                await conn.fetch(sql.APPEND_EVENTS, job_id, ["job.cancel_requested"], [_EMPTY])
                if queued:
                    await conn.fetch(sql.CANCEL_QUEUED, job_id)
                else:
                    await conn.execute(sql.MARK_CANCEL, job_id)
            row = await conn.fetchrow(sql.GET_JOB, job_id, None)
        if changed:  # a canceled queued job may have held back same-key successors
            self._wake(work=queued, jobs=[job_id])
        return records.job_from_row(row)

    # --- workers ----------------------------------------------------------------------------
    async def claim_jobs(
        self, worker_id: str, *, pipelines: Sequence[str] | None, limit: int, lease_seconds: float
    ) -> list[Job]:
        names = None if pipelines is None else list(pipelines)
        rows = await self._fetch(sql.CLAIM, worker_id, names, limit, lease_seconds)
        jobs = [records.job_from_row(r) for r in rows]
        if jobs:
            self._wake(jobs=[job.id for job in jobs])
        if not rows or time.monotonic() >= self._exhausted_due:
            # Idle (no claimed job waits for this), or a second passed: fail dead workers' used-up jobs.
            self._exhausted_due = time.monotonic() + _EXHAUSTED_EVERY_SECONDS
            template, mark = records.EXHAUSTED_ERROR_TEMPLATE, records.ATTEMPTS_MARK
            self._finished(await self._fetch(sql.FAIL_EXHAUSTED, names, limit, template, mark))
        return jobs

    async def _heartbeat(self, worker_id: str, job_ids: list[str], lease_seconds: float) -> tuple[set[str], set[str]]:
        rows = await self._fetch(sql.HEARTBEAT, job_ids, worker_id, lease_seconds, idempotent=True)
        return {r["id"] for r in rows}, {r["id"] for r in rows if r["cancel_requested"]}

    async def release(self, worker_id: str, job_ids: Sequence[str]) -> None:
        if job_ids:
            await self._execute(sql.RELEASE, list(job_ids), worker_id, dumps({"worker": worker_id}), idempotent=True)
            self._wake(work=True, jobs=job_ids)

    async def set_progress(
        self, job_id: str, worker_id: str, progress: Progress, *, attempt: int | None = None
    ) -> None:
        data = dumps({"stage": progress.stage, "done": progress.done, "total": progress.total})
        status = await self._execute(
            sql.SET_PROGRESS, job_id, worker_id, progress.stage, progress.done, progress.total, data, attempt
        )
        if status != "INSERT 0 0":
            self._wake(jobs=[job_id])

    async def _finish(
        self, job_id: str, worker_id: str, attempt: int | None, status: JobStatus, encoded: Encoded
    ) -> bool:
        result_text, error_text, usage_text = encoded
        finish = _Finish(job_id, worker_id, status.value, result_text, error_text, usage_text, attempt)
        finished: bool = await self._finishes.submit(finish)
        return finished

    # Finishes asked for while one statement is in flight go together in the next one (``batching.Batcher``), so a busy
    # worker pays one round trip and one WAL flush for many jobs, not one.
    _finishes: Batcher[_Finish]

    async def _finish_batch(self, batch: list[_Finish]) -> list[Outcome]:
        finished = await self._finish_rows(batch)
        return [(True, finish.job_id in finished) for finish in batch]

    async def _finish_rows(self, rows: list[_Finish]) -> set[str]:
        if len(rows) == 1:
            (one,) = rows
            return self._finished(await self._fetch(sql.FINISH, *one))
        columns = [list(column) for column in zip(*rows, strict=True)]
        for attempt in range(3):
            try:
                return self._finished(await self._fetch(sql.FINISH_MANY, *columns))
            except errors.StoreError as exc:  # rows locked in another order by a heartbeat: run it again
                if attempt == 2 or not isinstance(exc.__cause__, asyncpg.exceptions.DeadlockDetectedError):
                    raise
        raise AssertionError("unreachable")

    def _finished(self, rows: list[asyncpg.Record]) -> set[str]:
        """The ids of jobs just finished; wakes their followers, and workers if a keyed job's successor may run."""
        if rows:
            self._wake(work=any(r["ordering_key"] is not None for r in rows), jobs=[r["id"] for r in rows])
        return {r["id"] for r in rows}

    async def retry_later(
        self, job_id: str, worker_id: str, run_at: datetime, error: JSON, *, attempt: int | None = None
    ) -> bool:
        data = dumps({"retry_at": run_at.astimezone(UTC).isoformat(), "error": error})
        if await self._fetchrow(sql.RETRY_LATER, job_id, worker_id, run_at, dumps(error), data, attempt) is None:
            return False
        self._wake(work=True, jobs=[job_id])
        return True

    # --- steps and events ----------------------------------------------------------------------
    async def save_step(
        self, step: Step, worker_id: str, events: Sequence[tuple[str, JSON]] = (), *, attempt: int | None = None
    ) -> Step:
        row = records.step_row(step, lambda at: at)
        types, data = _event_columns(events)
        inserted = await self._fetchval(
            sql.SAVE_STEP, step.job_id, worker_id, row.key, row.ok, row.output, row.error, row.attempts,
            row.started_at, row.finished_at, types, data, row.usage, attempt, idempotent=True,
        )  # fmt: skip
        if inserted:
            if events:
                self._wake(jobs=[step.job_id])
            return records.step_from_row(row)
        existing = await self._fetchrow(
            f"SELECT {records.STEP_COLUMNS} FROM steps WHERE job_id = $1 AND key = $2",
            step.job_id,
            step.key,
            idempotent=True,
        )
        if existing is not None:  # first write wins
            return records.step_from_row(existing)
        raise errors.LeaseLost(job_id=step.job_id, step=step.key)

    async def _append_events(
        self, job_id: str, events: Sequence[tuple[str, JSON]], worker_id: str | None, attempt: int | None
    ) -> Appended:
        types, data = _event_columns(events)
        if worker_id is None:
            rows = await self._fetch(sql.APPEND_EVENTS, job_id, types, data)
        else:
            rows = await self._fetch(sql.APPEND_WORKER_EVENTS, job_id, types, data, worker_id, attempt)
        if rows:
            self._wake(jobs=[job_id])
        return sorted((r["seq"], r["at"]) for r in rows)

    # --- housekeeping ----------------------------------------------------------------------------
    async def purge_expired(self, now: datetime | None = None) -> int:
        purged = 0
        while True:
            async with self._acquire() as conn, conn.transaction():
                rows = await conn.fetch(sql.PURGE, now, _PURGE_BATCH)
                if rows:
                    await conn.execute(sql.DELETE_CHILDREN, [r["id"] for r in rows])
                    refs = [f.blob for r in rows for f in records.decode_files(r["files"])]
                    await postgres_blobs.delete_refs(conn, refs)
            purged += len(rows)
            if len(rows) < _PURGE_BATCH:
                return purged


class _Finish(NamedTuple):
    """One ``finish`` waiting for its group: the parameters of ``FINISH`` (one) or ``FINISH_MANY`` (as columns)."""

    job_id: str
    worker_id: str
    status: str
    result: str | None
    error: str | None
    usage: str | None
    attempt: int | None


def _event_columns(events: Sequence[tuple[str, JSON]]) -> tuple[list[str], list[str]]:
    """The event types and their JSON texts, as the parallel arrays the statements take."""
    return [etype for etype, _ in events], [dumps(data) for _, data in events]


__all__ = ["PostgresJobs"]
