"""Retrying a finished job on PostgreSQL (a mixin of ``PostgresJobStore``; the rules in ``retry_plan``)."""

from __future__ import annotations

import orjson

from ingestd import errors
from ingestd.models import Job
from ingestd.store import postgres_sql as sql
from ingestd.store import records, retry_plan
from ingestd.store.postgres_base import PostgresBase

_REQUEUE = """
UPDATE jobs SET status = 'queued', result = NULL, error = NULL, finished_at = NULL, expires_at = NULL,
    cancel_requested = false, lease_owner = NULL, lease_expires_at = NULL, run_at = now(), updated_at = now(),
    max_attempts = attempt + max_attempts,
    deadline_at = CASE WHEN deadline_seconds IS NULL THEN NULL ELSE now() + deadline_seconds * interval '1 second' END
WHERE id = $1
"""


class PostgresRetry(PostgresBase):
    """``retry_job`` of ``PostgresJobStore``."""

    async def retry_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Requeue a failed/partial/canceled job without its failed checkpoints (None when not found)."""
        async with self._acquire() as conn, conn.transaction():
            lock = await conn.fetchrow(sql.LOCK_JOB, job_id, tenant)
            if lock is None:
                return None
            status = lock["status"]
            if status not in retry_plan.RETRYABLE:
                raise errors.Conflict(retry_plan.not_retryable(job_id, status), status_now=status)
            steps = await conn.fetch("SELECT key, ok, finished_at FROM steps WHERE job_id = $1", job_id)
            rerun = retry_plan.steps_to_rerun([(r["key"], r["ok"], r["finished_at"]) for r in steps])
            await conn.execute("DELETE FROM steps WHERE job_id = $1 AND key = ANY($2::text[])", job_id, rerun)
            await conn.execute(_REQUEUE, job_id)
            event = orjson.dumps({"was": status, "rerun": rerun}).decode()
            await conn.fetch(sql.APPEND_EVENTS, job_id, ["job.retried"], [event])
            row = await conn.fetchrow(sql.GET_JOB, job_id, None)
        self._wake(work=True, jobs=[job_id])
        return records.job_from_row(row)
