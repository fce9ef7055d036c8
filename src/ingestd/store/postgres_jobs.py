"""The PostgreSQL store's job transitions (a mixin of ``PostgresJobStore``).

The hot path (submit, claim, heartbeat, save_step, finish, append_events) is one statement each from
``postgres_sql``: one round trip, atomic without BEGIN/COMMIT, planned once per pooled connection (asyncpg caches
prepared statements). Cancel, delete and purge are rarer and read-then-write, so they run in a transaction that
locks the job row first. After each commit that matters, ``_wake`` wakes workers and followers (``pg_listen``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ingestd import errors
from ingestd.models import (
    JSON,
    Event,
    HeartbeatResult,
    Job,
    JobStatus,
    NewJob,
    Progress,
    Step,
    SubmitOutcome,
    new_job_id,
)
from ingestd.store import pg_blobs, records
from ingestd.store import postgres_sql as sql
from ingestd.store.postgres_base import PostgresBase
from ingestd.store.records import dumps, dumps_or_none, terminal_outcome

_PURGE_BATCH = 500
_EXHAUSTED_EVERY_SECONDS = 1.0
_EMPTY = "{}"


class PostgresJobs(PostgresBase):
    """``JobStore``'s writes on PostgreSQL."""

    _exhausted_due = 0.0  # when claim_jobs next fails used-up expired jobs even if it claimed some

    async def submit(self, new: NewJob) -> SubmitOutcome:
        args = (
            new.tenant, new.pipeline, dumps(new.input), records.encode_files(new.files), new.max_attempts,
            new.priority, new.run_at, new.ordering_key, new.idempotency_key, new.payload_hash, new.deadline_seconds,
            new.retention_seconds, new.webhook_url, new.units, dumps({"pipeline": new.pipeline}),
        )  # fmt: skip
        for _ in range(3):  # only loops if the existing job is deleted between the two statements
            row = await self._fetchrow(sql.SUBMIT, new_job_id(), *args)
            if row is not None:
                self._wake(work=True, jobs=[row[0]])
                return SubmitOutcome(records.job_from_row(row), created=True)
            existing = await self._fetchrow(sql.BY_IDEMPOTENCY_KEY, new.tenant, new.idempotency_key)
            if existing is not None:
                if existing[17] != new.payload_hash:
                    raise errors.IdempotencyConflict(job_id=existing[0])
                return SubmitOutcome(records.job_from_row(existing), created=False)
        raise errors.StoreError("the job with this Idempotency-Key kept disappearing; try again")

    async def delete_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        async with self._acquire() as conn, conn.transaction():
            lock = await conn.fetchrow(sql.LOCK_JOB, job_id, tenant)
            if lock is None:
                return None
            if not JobStatus(lock[0]).terminal:
                raise errors.JobNotFinished(job_id=job_id)
            row = await conn.fetchrow(sql.GET_JOB, job_id, None)
            await conn.execute(sql.DELETE_CHILDREN, [job_id])
            await conn.execute("DELETE FROM jobs WHERE id = $1", job_id)
            job = records.job_from_row(row)
            await pg_blobs.delete_refs(conn, [f.blob for f in job.files])
        return job

    async def request_cancel(self, job_id: str, tenant: str | None = None) -> Job | None:
        async with self._acquire() as conn, conn.transaction():
            lock = await conn.fetchrow(sql.LOCK_JOB, job_id, tenant)
            if lock is None:
                return None
            changed = lock[0] == JobStatus.QUEUED or (lock[0] == JobStatus.RUNNING and not lock[1])
            if changed:
                await conn.fetch(sql.APPEND_EVENTS, job_id, ["job.cancel_requested"], [_EMPTY])
                if lock[0] == JobStatus.QUEUED:
                    await conn.fetch(sql.CANCEL_QUEUED, job_id)
                else:
                    await conn.execute(sql.MARK_CANCEL, job_id)
            row = await conn.fetchrow(sql.GET_JOB, job_id, None)
        if changed:  # a canceled queued job may have held back same-key successors
            self._wake(work=lock[0] == JobStatus.QUEUED, jobs=[job_id])
        return records.job_from_row(row)

    # --- workers ----------------------------------------------------------------------------
    async def claim_jobs(
        self, worker_id: str, *, pipelines: Sequence[str] | None, limit: int, lease_seconds: float
    ) -> list[Job]:
        names = None if pipelines is None else list(pipelines)
        rows = await self._fetch(sql.CLAIM, worker_id, names, limit, lease_seconds)
        if rows:
            self._wake(jobs=[r[0] for r in rows])
        if not rows or time.monotonic() >= self._exhausted_due:
            # Idle (no claimed job waits for this), or a second passed: fail dead workers' used-up jobs.
            self._exhausted_due = time.monotonic() + _EXHAUSTED_EVERY_SECONDS
            self._finished(await self._fetch(sql.FAIL_EXHAUSTED, names, limit))
        return [records.job_from_row(r) for r in rows]

    async def heartbeat(self, worker_id: str, job_ids: Sequence[str], lease_seconds: float) -> HeartbeatResult:
        ids = list(dict.fromkeys(job_ids))
        rows = await self._fetch(sql.HEARTBEAT, ids, worker_id, lease_seconds, idempotent=True)
        held = {r[0] for r in rows}
        cancel = {r[0] for r in rows if r[1]}
        return HeartbeatResult(lost=frozenset(set(ids) - held), cancel_requested=frozenset(cancel))

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

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result: JSON | None = None,
        error: JSON | None = None,
        usage: JSON | None = None,
        attempt: int | None = None,
    ) -> bool:
        status, encoded = terminal_outcome(status, result, error, usage)
        return await self._finish_grouped((job_id, worker_id, status.value, *encoded, attempt))

    # Group commit of finishes (measured by bench/engine.py): finishes asked for while one statement is in flight
    # go together in the next one, so a busy worker pays one round trip and one WAL flush for many jobs, not one.
    _finish_pending: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] | None = None
    _finish_task: asyncio.Task[None] | None = None

    async def _finish_grouped(self, row: tuple[Any, ...]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        if self._finish_pending is None:
            self._finish_pending = []
        self._finish_pending.append((row, future))
        if self._finish_task is None:
            self._finish_task = asyncio.create_task(self._finish_drain(), name="ingestd-pg-finish")
        return await asyncio.shield(future)

    async def _finish_drain(self) -> None:
        try:
            while self._finish_pending:
                batch, self._finish_pending = self._finish_pending, []
                try:
                    finished = await self._finish_rows([row for row, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for row, future in batch:
                    if not future.done():
                        future.set_result(row[0] in finished)
        finally:
            self._finish_task = None

    async def _finish_rows(self, rows: list[tuple[Any, ...]]) -> set[str]:
        if len(rows) == 1:
            return self._finished(await self._fetch(sql.FINISH, *rows[0]))
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
            self._wake(work=any(r[1] is not None for r in rows), jobs=[r[0] for r in rows])
        return {r[0] for r in rows}

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
        row = (step.job_id, step.key, step.ok, dumps(step.output), dumps_or_none(step.error), step.attempts,
               step.started_at, step.finished_at, dumps(step.usage))  # fmt: skip
        types, data = [e[0] for e in events], [dumps(e[1]) for e in events]
        counts = await self._fetchrow(
            sql.SAVE_STEP, step.job_id, worker_id, *row[1:8], types, data, row[8], attempt, idempotent=True
        )
        if counts is not None and counts[0]:
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

    async def append_events(
        self,
        job_id: str,
        events: Sequence[tuple[str, JSON]],
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> list[Event]:
        if not events:
            return []
        types, data = [e[0] for e in events], [dumps(e[1]) for e in events]
        if worker_id is None:
            rows = await self._fetch(sql.APPEND_EVENTS, job_id, types, data)
        else:
            rows = await self._fetch(sql.APPEND_WORKER_EVENTS, job_id, types, data, worker_id, attempt)
        if not rows and worker_id is not None:
            raise errors.LeaseLost(job_id=job_id, event=events[0][0])
        rows = sorted(rows, key=lambda r: r[0])
        if rows:
            self._wake(jobs=[job_id])
        return [Event(job_id, r[0], etype, value, r[1]) for r, (etype, value) in zip(rows, events, strict=True)]

    # --- housekeeping ----------------------------------------------------------------------------
    async def purge_expired(self, now: datetime | None = None) -> int:
        purged = 0
        while True:
            async with self._acquire() as conn, conn.transaction():
                rows = await conn.fetch(sql.PURGE, now, _PURGE_BATCH)
                if rows:
                    await conn.execute(sql.DELETE_CHILDREN, [r[0] for r in rows])
                    refs = [f.blob for r in rows for f in records.decode_files(r[1])]
                    await pg_blobs.delete_refs(conn, refs)
            purged += len(rows)
            if len(rows) < _PURGE_BATCH:
                return purged


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A caller cancelled while its finish was in flight never reads the outcome: mark it read (no loop warning).
    if not future.cancelled():
        future.exception()


__all__ = ["PostgresJobs"]
