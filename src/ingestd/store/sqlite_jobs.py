"""The SQLite store's job transactions, as plain functions of a ``sqlite3.Connection``.

Each function runs inside one transaction opened by ``SQLiteJobStore`` (``BEGIN IMMEDIATE`` for writes) in the
store's database thread, and records in ``wake`` what the commit should wake. Times are Unix seconds. The SQL sits
next to the function that runs it; status literals are inlined (not bound) so SQLite can use the partial indexes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from ingestd import errors
from ingestd.models import JSON, JobStatus, NewJob, Progress
from ingestd.store import records, sqlite_webhooks
from ingestd.store.records import JOB_COLUMNS, dumps
from ingestd.store.wakeup import Wake

JobRow = records.JobRow
_TERMINAL = records.TERMINAL_SQL


class FinishedRow(NamedTuple):
    """A job just moved to a terminal status, as its finishing UPDATE returns it (``_FINISHED_RETURNING``)."""

    id: str
    last_seq: int
    tenant: str
    pipeline: str
    webhook_url: str | None
    ordering_key: str | None


class TransactionTime:
    """Stands for "now" in a write's arguments (``NOW``); the store puts the clock's time there once its
    ``BEGIN IMMEDIATE`` holds the write lock. A time read before the write waited its turn for the lock (behind the
    group commit, or behind other processes) could be older than a change committed meanwhile: a claim's
    ``job.started`` would then seem to come before the ``job.finished`` of the same-key job it waited for."""

    def __repr__(self) -> str:
        return "NOW"


NOW = TransactionTime()


def _marks(n: int) -> str:
    return ",".join("?" * n)


# The fence of a worker's writes (as in postgres_sql.fenced): the job runs under this worker's lease of this
# execution. Parameters: worker, attempt, attempt (a NULL attempt: the worker alone).
FENCE = "status = 'running' AND lease_owner = ? AND (? IS NULL OR attempt = ?)"


class Lease(NamedTuple):
    """Whose writes ``FENCE`` lets through: the worker, and its execution (``attempt``; None: the worker alone)."""

    worker: str
    attempt: int | None

    @property
    def params(self) -> tuple[str, int | None, int | None]:
        """The parameters of ``FENCE``."""
        return self.worker, self.attempt, self.attempt


def append_events(
    conn: sqlite3.Connection,
    wake: Wake,
    job_id: str,
    events: Sequence[tuple[str, JSON]],
    now: float,
    lease: Lease | None = None,
) -> int:
    """Append ``events`` with the next sequence numbers; returns the last seq (0 if the job does not exist, or,
    with a ``lease`` (worker, attempt), if the job no longer runs under it)."""
    if not events:
        return 0
    fence, params = ("", ()) if lease is None else (f" AND {FENCE}", lease.params)
    row = conn.execute(
        f"UPDATE jobs SET last_seq = last_seq + ? WHERE id = ?{fence} RETURNING last_seq",
        (len(events), job_id, *params),
    ).fetchone()
    if row is None:
        return 0
    (last_seq,) = row
    first = last_seq - len(events) + 1
    conn.executemany(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)",
        [(job_id, first + i, etype, dumps(data), now) for i, (etype, data) in enumerate(events)],
    )
    wake.jobs.append(job_id)
    return int(last_seq)


_INSERT_JOB = (
    "INSERT INTO jobs (id, tenant, pipeline, status, input, files, attempt, max_attempts, priority, run_at, "
    "ordering_key, idempotency_key, payload_hash, created_at, updated_at, cancel_requested, deadline_seconds, "
    "retention_seconds, usage, webhook_url, units, last_seq, traceparent) "
    "VALUES (?, ?, ?, 'queued', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '{}', ?, ?, 1, ?) "
    f"RETURNING {JOB_COLUMNS}"
)


def submit(conn: sqlite3.Connection, wake: Wake, new: NewJob, job_id: str, now: float) -> tuple[JobRow, bool]:
    """Insert the job and its ``job.queued`` event: (row, True); the job with this ``Idempotency-Key``: (its row,
    False; the caller compares the payloads)."""
    if new.idempotency_key is not None:
        existing = conn.execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ? AND idempotency_key = ?",
            (new.tenant, new.idempotency_key),
        ).fetchone()
        if existing is not None:
            return JobRow._make(existing), False
    run_at = new.run_at.timestamp() if new.run_at else now
    row = conn.execute(
        _INSERT_JOB,
        (job_id, new.tenant, new.pipeline, dumps(new.input), records.encode_files(new.files), new.max_attempts,
         new.priority, run_at, new.ordering_key, new.idempotency_key, new.payload_hash, now, now,
         new.deadline_seconds, new.retention_seconds, new.webhook_url, new.units, new.traceparent),
    ).fetchone()  # fmt: skip
    conn.execute(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, 1, 'job.queued', ?, ?)",
        (job_id, dumps({"pipeline": new.pipeline}), now),
    )
    wake.work = True
    wake.jobs.append(job_id)
    return JobRow._make(row), True


def _pipeline_filter(pipelines: Sequence[str] | None) -> tuple[str, list[str]]:
    if pipelines is None:
        return "", []
    return f" AND pipeline IN ({_marks(len(pipelines))})", list(pipelines)


def _queued_ids(conn: sqlite3.Connection, now: float, pipelines: Sequence[str] | None, limit: int) -> list[str]:
    # A keyed job waits while a same-key job of its tenant runs or an earlier one is still queued (submission
    # order); keys are scoped by tenant, so one tenant cannot hold another's jobs.
    where, params = _pipeline_filter(pipelines)
    sql = (
        "SELECT id FROM jobs AS j WHERE status = 'queued' AND run_at <= ?" + where + " AND (ordering_key IS NULL OR ("
        "NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.ordering_key = j.ordering_key AND o.tenant = j.tenant "
        "AND o.status = 'running') AND "
        "NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.ordering_key = j.ordering_key AND o.tenant = j.tenant "
        "AND o.status = 'queued' AND o.id < j.id))) ORDER BY priority DESC, run_at, id LIMIT ?"
    )
    return [job_id for (job_id,) in conn.execute(sql, (now, *params, limit))]


class _Expired(NamedTuple):
    id: str
    exhausted: bool | int  # its attempts are used up
    attempt: int


def _expired(conn: sqlite3.Connection, now: float, pipelines: Sequence[str] | None, limit: int) -> list[_Expired]:
    where, params = _pipeline_filter(pipelines)
    sql = (
        "SELECT id, attempt >= max_attempts, attempt FROM jobs WHERE status = 'running' AND lease_expires_at < ?"
        + where
        + " ORDER BY lease_expires_at LIMIT ?"
    )
    return [_Expired._make(r) for r in conn.execute(sql, (now, *params, limit))]


def _finish_rows(conn: sqlite3.Connection, wake: Wake, rows: list[FinishedRow], status: str, now: float) -> None:
    """Events and webhook outbox rows of jobs just moved to a terminal ``status``.

    ``rows``: as returned by the UPDATE (``_FINISHED_RETURNING``)."""
    conn.executemany(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, 'job.finished', ?, ?)",
        [(r.id, r.last_seq, dumps({"status": status}), now) for r in rows],
    )
    for r in rows:  # the webhook outbox: the job's URL, then the tenant's endpoints subscribed to job.<status>
        job = {
            "id": r.id,
            "last_seq": r.last_seq,
            "tenant": r.tenant,
            "pipeline": r.pipeline,
            "webhook_url": r.webhook_url,
        }
        sqlite_webhooks.queue_finished(conn, job, status, now)
    wake.jobs.extend(r.id for r in rows)
    if any(r.ordering_key is not None for r in rows):
        wake.work = True  # a same-key successor may be claimable now


_TERMINAL_SET = (
    "finished_at = ?, updated_at = ?, expires_at = ? + retention_seconds, lease_owner = NULL, "
    "lease_expires_at = NULL, last_seq = last_seq + 1"
)
_FINISHED_RETURNING = "RETURNING " + records.columns(FinishedRow._fields)


def _fail_exhausted(conn: sqlite3.Connection, wake: Wake, expired: list[_Expired], now: float) -> None:
    """Fail expired jobs whose attempts are used up."""
    rows = []
    for job in expired:
        row = conn.execute(
            f"UPDATE jobs SET status = 'failed', error = ?, {_TERMINAL_SET} "
            f"WHERE id = ? AND status = 'running' {_FINISHED_RETURNING}",
            (dumps(records.exhausted_error(job.attempt)), now, now, now, job.id),
        ).fetchone()
        rows.append(FinishedRow._make(row))
    _finish_rows(conn, wake, rows, JobStatus.FAILED, now)


def claim(
    conn: sqlite3.Connection,
    wake: Wake,
    worker_id: str,
    pipelines: Sequence[str] | None,
    limit: int,
    lease_seconds: float,
    now: float,
) -> list[JobRow]:
    """Fail exhausted expired jobs, then lease expired and queued jobs (see protocol.py). Rows in claim order."""
    expired = _expired(conn, now, pipelines, limit)
    exhausted = [job for job in expired if job.exhausted]
    if exhausted:
        _fail_exhausted(conn, wake, exhausted, now)
    ids = [job.id for job in expired if not job.exhausted]
    if len(ids) < limit:
        ids += _queued_ids(conn, now, pipelines, limit - len(ids))
    if not ids:
        return []
    rows = [
        JobRow._make(row)
        for row in conn.execute(
            f"UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_owner = ?, lease_expires_at = ?, "
            f"started_at = coalesce(started_at, ?), deadline_at = coalesce(deadline_at, ? + deadline_seconds), "
            f"updated_at = ?, last_seq = last_seq + 1 WHERE id IN ({_marks(len(ids))}) RETURNING {JOB_COLUMNS}",
            (worker_id, now + lease_seconds, now, now, now, *ids),
        )
    ]
    conn.executemany(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, 'job.started', ?, ?)",
        [(r.id, r.last_seq, dumps({"attempt": r.attempt, "worker": worker_id}), now) for r in rows],
    )
    wake.jobs.extend(r.id for r in rows)
    order = {job_id: i for i, job_id in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r.id])


def heartbeat(
    conn: sqlite3.Connection, wake: Wake, worker_id: str, job_ids: Sequence[str], lease_seconds: float, now: float
) -> tuple[set[str], set[str]]:
    """Extend held leases; returns (held, cancel requested)."""
    held: set[str] = set()
    cancel: set[str] = set()
    if job_ids:
        rows = conn.execute(
            f"UPDATE jobs SET lease_expires_at = ? WHERE id IN ({_marks(len(job_ids))}) AND status = 'running' "
            "AND lease_owner = ? RETURNING id, cancel_requested",
            (now + lease_seconds, *job_ids, worker_id),
        ).fetchall()
        held = {job_id for job_id, _ in rows}
        cancel = {job_id for job_id, cancel_requested in rows if cancel_requested}
    conn.execute(
        "INSERT INTO workers (id, last_seen, jobs) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, jobs = excluded.jobs",
        (worker_id, now, len(held)),
    )
    return held, cancel


def release(conn: sqlite3.Connection, wake: Wake, worker_id: str, job_ids: Sequence[str], now: float) -> None:
    if not job_ids:
        return
    rows = conn.execute(
        "UPDATE jobs SET status = 'queued', attempt = max(attempt - 1, 0), lease_owner = NULL, "
        f"lease_expires_at = NULL, updated_at = ?, last_seq = last_seq + 1 WHERE id IN ({_marks(len(job_ids))}) "
        "AND status = 'running' AND lease_owner = ? RETURNING id, last_seq",
        (now, *job_ids, worker_id),
    ).fetchall()
    conn.executemany(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, 'job.released', ?, ?)",
        [(job_id, last_seq, dumps({"worker": worker_id}), now) for job_id, last_seq in rows],
    )
    if rows:
        wake.work = True
        wake.jobs.extend(job_id for job_id, _ in rows)


def set_progress(conn: sqlite3.Connection, wake: Wake, job_id: str, lease: Lease, p: Progress, now: float) -> None:
    row = conn.execute(
        "UPDATE jobs SET progress_stage = ?, progress_done = ?, progress_total = ?, updated_at = ?, "
        f"last_seq = last_seq + 1 WHERE id = ? AND {FENCE} RETURNING last_seq",
        (p.stage, p.done, p.total, now, job_id, *lease.params),
    ).fetchone()
    if row is not None:
        (last_seq,) = row
        progress = {"stage": p.stage, "done": p.done, "total": p.total}
        conn.execute(
            "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, 'job.progress', ?, ?)",
            (job_id, last_seq, dumps(progress), now),
        )
        sqlite_webhooks.queue_progress(conn, job_id, last_seq, progress, now)
        wake.jobs.append(job_id)


def finish(
    conn: sqlite3.Connection,
    wake: Wake,
    job_id: str,
    lease: Lease,
    status: JobStatus,
    values: tuple[str | None, str | None, str | None],
    now: float,
) -> bool:
    """Compare-and-set a job running under ``lease`` (worker, attempt) to ``status``; ``values``: encoded
    (result, error, usage)."""
    result, error, usage = values
    row = conn.execute(
        f"UPDATE jobs SET status = ?, result = ?, error = ?, usage = coalesce(?, usage), {_TERMINAL_SET} "
        f"WHERE id = ? AND {FENCE} {_FINISHED_RETURNING}",
        (status.value, result, error, usage, now, now, now, job_id, *lease.params),
    ).fetchone()
    if row is None:
        return False
    _finish_rows(conn, wake, [FinishedRow._make(row)], status, now)
    return True


def retry_later(
    conn: sqlite3.Connection,
    wake: Wake,
    job_id: str,
    lease: Lease,
    run_at: float,
    error: JSON,
    now: float,
) -> bool:
    row = conn.execute(
        "UPDATE jobs SET status = 'queued', run_at = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, "
        f"updated_at = ?, last_seq = last_seq + 1 WHERE id = ? AND {FENCE} RETURNING last_seq",
        (run_at, dumps(error), now, job_id, *lease.params),
    ).fetchone()
    if row is None:
        return False
    (last_seq,) = row
    retry_at = records.as_datetime(run_at)
    assert retry_at is not None
    conn.execute(
        "INSERT INTO events (job_id, seq, type, data, at) VALUES (?, ?, 'job.queued', ?, ?)",
        (job_id, last_seq, dumps({"retry_at": retry_at.isoformat(), "error": error}), now),
    )
    wake.work = True
    wake.jobs.append(job_id)
    return True


def request_cancel(conn: sqlite3.Connection, wake: Wake, job_id: str, tenant: str | None, now: float) -> JobRow | None:
    where = " AND tenant = ?" if tenant is not None else ""
    params = (job_id, tenant) if tenant is not None else (job_id,)
    row = conn.execute(f"SELECT status, cancel_requested FROM jobs WHERE id = ?{where}", params).fetchone()
    if row is None:
        return None
    status, cancel_requested = row
    if status == JobStatus.QUEUED:
        append_events(conn, wake, job_id, [("job.cancel_requested", {})], now)
        done = conn.execute(
            f"UPDATE jobs SET status = 'canceled', {_TERMINAL_SET} WHERE id = ? {_FINISHED_RETURNING}",
            (now, now, now, job_id),
        ).fetchone()
        _finish_rows(conn, wake, [FinishedRow._make(done)], JobStatus.CANCELED, now)
        wake.work = True  # it may have been holding back same-key successors
    elif status == JobStatus.RUNNING and not cancel_requested:
        conn.execute("UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?", (now, job_id))
        append_events(conn, wake, job_id, [("job.cancel_requested", {})], now)
    return job_row(conn, job_id)


def job_row(conn: sqlite3.Connection, job_id: str) -> JobRow:
    """The row of a job that exists."""
    return JobRow._make(conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())


def delete_job(conn: sqlite3.Connection, wake: Wake, job_id: str, tenant: str | None) -> JobRow | None:
    where = " AND tenant = ?" if tenant is not None else ""
    params = (job_id, tenant) if tenant is not None else (job_id,)
    row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?{where}", params).fetchone()
    if row is None:
        return None
    job = JobRow._make(row)
    if not JobStatus(job.status).terminal:
        raise errors.JobNotFinished(job_id=job_id)
    _delete_ids(conn, [job_id])
    return job


def _delete_ids(conn: sqlite3.Connection, ids: list[str]) -> None:
    marks = _marks(len(ids))
    for table in ("events", "steps"):
        conn.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)


def purge_expired(conn: sqlite3.Connection, wake: Wake, now: float, batch: int) -> list[str]:
    """Delete up to ``batch`` expired terminal jobs; returns their files' encoded lists (for blob deletion)."""
    rows = conn.execute(
        f"SELECT id, files FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ? AND status IN {_TERMINAL} LIMIT ?",
        (now, batch),
    ).fetchall()
    if rows:
        _delete_ids(conn, [job_id for job_id, _ in rows])
    return [files for _, files in rows]
