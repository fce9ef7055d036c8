"""The PostgreSQL store's reads and small writes: jobs, events, steps, workers, numbers, API keys (a mixin)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ingestd.models import JSON, Event, Job, JobFilter, Step
from ingestd.store import postgres_sql as sql
from ingestd.store import records
from ingestd.store.postgres_base import PostgresBase
from ingestd.store.records import EVENT_COLUMNS, JOB_COLUMNS


class PostgresReads(PostgresBase):
    """Single-statement queries of ``PostgresJobStore``."""

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        row = await self._fetchrow(sql.GET_JOB, job_id, tenant, idempotent=True)
        return records.job_from_row(row) if row is not None else None

    async def _job_rows(self, flt: JobFilter, cursor: str | None, limit: int) -> Sequence[Sequence[Any]]:
        numbers = itertools.count(1)
        where, params = records.job_filter_sql(flt, cursor, lambda: f"${next(numbers)}", lambda d: d)
        order = f"ORDER BY id DESC LIMIT ${next(numbers)}"
        return await self._fetch(f"SELECT {JOB_COLUMNS} FROM jobs{where} {order}", *params, limit, idempotent=True)

    async def count_queued(self, tenant: str) -> int:
        return int(
            await self._fetchval(
                "SELECT count(*) FROM jobs WHERE tenant = $1 AND status = 'queued'", tenant, idempotent=True
            )
        )

    async def read_events(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            job_id,
            after,
            limit,
            idempotent=True,
        )
        return [records.event_from_row(r) for r in rows]

    async def _last_seq(self, job_id: str) -> int:
        value = await self._fetchval("SELECT last_seq FROM jobs WHERE id = $1", job_id, idempotent=True)
        return int(value) if value is not None else 0

    async def load_steps(self, job_id: str) -> dict[str, Step]:
        rows = await self._fetch(f"SELECT {records.STEP_COLUMNS} FROM steps WHERE job_id = $1", job_id, idempotent=True)
        steps = (records.step_from_row(r) for r in rows)
        return {step.key: step for step in steps}

    async def live_workers(self, within_seconds: float) -> list[JSON]:
        rows = await self._fetch(
            f"SELECT {records.WORKER_COLUMNS} FROM workers WHERE last_seen >= now() - $1::float8 {sql.SECONDS} "
            "ORDER BY id",
            within_seconds,
            idempotent=True,
        )
        return [records.worker_from_row(r) for r in rows]

    async def queue_stats(self) -> list[JSON]:
        rows = await self._fetch(sql.QUEUE_STATS, idempotent=True)
        return [
            {"pipeline": pipeline, "queued": int(queued), "running": int(running), "oldest_queued_age": float(oldest)}
            for pipeline, queued, running, oldest in rows
        ]

    async def recent_durations(self, pipeline: str, limit: int = 50) -> list[tuple[float, float]]:
        rows = await self._fetch(
            "SELECT units, extract(epoch FROM finished_at - started_at)::float8 FROM jobs "
            "WHERE pipeline = $1 AND status = 'succeeded' ORDER BY finished_at DESC LIMIT $2",
            pipeline,
            limit,
            idempotent=True,
        )
        return [(float(units), float(seconds)) for units, seconds in rows]


__all__ = ["PostgresReads"]
