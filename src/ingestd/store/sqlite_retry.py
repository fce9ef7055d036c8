"""Retrying a finished job on SQLite (a mixin of ``SQLiteJobStore``; the rules in ``retry_plan``)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ingestd import errors
from ingestd.models import Job
from ingestd.store import records, retry_plan
from ingestd.store.sqlite_jobs import append_events, job_row
from ingestd.store.wakeup import Wake

_REQUEUE = (
    "UPDATE jobs SET status = 'queued', result = NULL, error = NULL, finished_at = NULL, expires_at = NULL, "
    "cancel_requested = 0, lease_owner = NULL, lease_expires_at = NULL, run_at = ?, updated_at = ?, "
    "max_attempts = attempt + max_attempts, "
    "deadline_at = CASE WHEN deadline_seconds IS NULL THEN NULL ELSE ? + deadline_seconds END WHERE id = ?"
)


def retry(conn: sqlite3.Connection, wake: Wake, job_id: str, tenant: str | None, now: float) -> Any:
    """Requeue a failed/partial/canceled job without its failed checkpoints; its row, or None when not found."""
    where = " AND tenant = ?" if tenant is not None else ""
    params = (job_id, tenant) if tenant is not None else (job_id,)
    row = conn.execute(f"SELECT status FROM jobs WHERE id = ?{where}", params).fetchone()
    if row is None:
        return None
    (status,) = row
    if status not in retry_plan.RETRYABLE:
        raise errors.Conflict(retry_plan.not_retryable(job_id, status), status_now=status)
    steps = conn.execute("SELECT key, ok, finished_at FROM steps WHERE job_id = ?", (job_id,)).fetchall()
    rerun = retry_plan.steps_to_rerun([(k, bool(ok), at) for k, ok, at in steps])
    conn.executemany("DELETE FROM steps WHERE job_id = ? AND key = ?", [(job_id, key) for key in rerun])
    conn.execute(_REQUEUE, (now, now, now, job_id))
    append_events(conn, wake, job_id, [("job.retried", {"was": status, "rerun": rerun})], now)
    wake.work = True
    return job_row(conn, job_id)


class SQLiteRetry:
    """``retry_job``; ``SQLiteJobStore`` provides ``_write``."""

    async def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    async def retry_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        row = await self._write(retry, job_id, tenant, time.time())
        return records.job_from_row(row) if row is not None else None
