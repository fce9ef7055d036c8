"""Rows to domain objects and back, shared by the SQLite and PostgreSQL backends.

Rows are read positionally in the order of ``JOB_COLUMNS`` / ``STEP_COLUMNS`` / ``EVENT_COLUMNS`` (the fastest
way with both drivers). Times arrive as Unix seconds (SQLite) or aware datetimes (PostgreSQL); ``as_datetime``
accepts both.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ingestd import errors
from ingestd.models import JSON, Event, Job, JobFilter, JobStatus, Progress, Step, StoredFile

JOB_COLUMNS = (
    "id, tenant, pipeline, status, input, files, progress_stage, progress_done, progress_total, result, error, "
    "attempt, max_attempts, priority, run_at, ordering_key, idempotency_key, payload_hash, created_at, "
    "started_at, finished_at, updated_at, expires_at, lease_owner, lease_expires_at, cancel_requested, "
    "deadline_at, usage, webhook_url, units, last_seq"
)
STEP_COLUMNS = "job_id, key, ok, output, error, attempts, started_at, finished_at, usage"
EVENT_COLUMNS = "job_id, seq, type, data, at"


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumps_or_none(value: JSON | None) -> str | None:
    """JSON text, or ``None`` (SQL NULL) for ``None``."""
    return None if value is None else dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def as_datetime(value: float | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, UTC)


def _dt(value: float | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)


def terminal_outcome(
    status: JobStatus, result: JSON | None, error: JSON | None, usage: JSON | None
) -> tuple[JobStatus, tuple[str | None, str | None, str | None]]:
    """What ``JobStore.finish`` stores: the status, which must be terminal (``ValueError`` otherwise), and the
    result, error and usage as JSON text (``None`` stays NULL)."""
    status = JobStatus(status)
    if not status.terminal:
        raise ValueError(f"finish needs a terminal status, not {status}")
    return status, (dumps_or_none(result), dumps_or_none(error), dumps_or_none(usage))


def encode_files(files: Sequence[StoredFile]) -> str:
    return dumps(
        [
            {"name": f.name, "blob": f.blob, "size": f.size, "content_type": f.content_type, "meta": f.meta}
            for f in files
        ]
    )


def decode_files(text: str) -> tuple[StoredFile, ...]:
    return tuple(StoredFile(**item) for item in orjson.loads(text))


def job_from_row(row: Sequence[Any]) -> Job:
    """A ``Job`` from a row selected with ``JOB_COLUMNS``."""
    return Job(
        id=row[0],
        tenant=row[1],
        pipeline=row[2],
        status=JobStatus(row[3]),
        input=orjson.loads(row[4]),
        files=decode_files(row[5]) if row[5] != "[]" else (),
        progress=Progress(row[6], row[7], row[8]),
        result=loads(row[9]),
        error=loads(row[10]),
        attempt=row[11],
        max_attempts=row[12],
        priority=row[13],
        run_at=_dt(row[14]),
        ordering_key=row[15],
        idempotency_key=row[16],
        payload_hash=row[17],
        created_at=_dt(row[18]),
        started_at=as_datetime(row[19]),
        finished_at=as_datetime(row[20]),
        updated_at=_dt(row[21]),
        expires_at=as_datetime(row[22]),
        lease_owner=row[23],
        lease_expires_at=as_datetime(row[24]),
        cancel_requested=bool(row[25]),
        deadline_at=as_datetime(row[26]),
        usage=orjson.loads(row[27]),
        webhook_url=row[28],
        units=row[29],
    )


def step_from_row(row: Sequence[Any]) -> Step:
    """A ``Step`` from a row selected with ``STEP_COLUMNS``."""
    return Step(
        job_id=row[0],
        key=row[1],
        ok=bool(row[2]),
        output=loads(row[3]),
        error=loads(row[4]),
        attempts=row[5],
        started_at=_dt(row[6]),
        finished_at=_dt(row[7]),
        usage=orjson.loads(row[8]),
    )


def event_from_row(row: Sequence[Any]) -> Event:
    """An ``Event`` from a row selected with ``EVENT_COLUMNS``."""
    return Event(job_id=row[0], seq=row[1], type=row[2], data=orjson.loads(row[3]), at=_dt(row[4]))


def encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        job_id = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        if not job_id.isalnum():
            raise ValueError(job_id)
        return job_id
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidInput("malformed cursor") from exc


def exhausted_error(attempts: int) -> JSON:
    """The RFC 9457 error of a job whose worker kept dying until its attempts ran out."""
    return {
        "type": "https://ingestd.dev/problems/attempts-exhausted",
        "title": "Attempts exhausted",
        "status": 500,
        "detail": f"the job's lease expired after {attempts} attempt(s): its worker stopped responding",
        "code": "attempts-exhausted",
    }


def webhook_payload(job_id: str, tenant: str, pipeline: str, status: str, at: datetime) -> JSON:
    """The Standard Webhooks body stored in the outbox when a job finishes.

    Kept small on purpose: the deliverer may enrich it from the job at send time. PostgreSQL builds the same
    document in SQL (``postgres_sql.TERMINAL_CTES``); keep the two in step.
    """
    return {
        "type": "job.finished",
        "timestamp": at.isoformat(),
        "data": {"id": job_id, "tenant": tenant, "pipeline": pipeline, "status": status},
    }


def webhook_urls(job_webhook_url: str | None) -> list[str]:
    """Where a finished job's webhook goes. Today only the job's own ``webhook_url``.

    The tenant's endpoints are added by ``sqlite_webhooks.webhook_targets`` (SQLite) and joined in PostgreSQL's
    finishing statement (``postgres_sql.TERMINAL_CTES``); each URL becomes one outbox row, written in the finishing
    transaction.
    """
    return [job_webhook_url] if job_webhook_url else []


def job_filter_sql(
    flt: JobFilter, cursor: str | None, placeholder: Callable[[], str], time_param: Callable[[datetime], Any]
) -> tuple[str, list[Any]]:
    """The WHERE clause (possibly empty) and parameters of ``list_jobs`` for either backend's placeholders."""
    clauses: list[str] = []
    params: list[Any] = []
    conditions: list[tuple[str, Any]] = [
        ("tenant = ", flt.tenant),
        ("pipeline = ", flt.pipeline),
        ("status = ", flt.status.value if flt.status is not None else None),
        ("created_at > ", time_param(flt.created_after) if flt.created_after else None),
        ("created_at < ", time_param(flt.created_before) if flt.created_before else None),
        ("id < ", decode_cursor(cursor) if cursor else None),
    ]
    for sql, value in conditions:
        if value is not None:
            clauses.append(sql + placeholder())
            params.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
