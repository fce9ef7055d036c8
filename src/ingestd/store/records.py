"""Rows to domain objects and back, shared by the SQLite and PostgreSQL backends.

Each table read has a typed row (``JobRow``, ``StepRow``...): a ``NamedTuple`` whose fields are the selected
columns, in order (``JOB_COLUMNS`` is made from ``JobRow``'s fields), so a row is read by name while both drivers
still return plain tuples. To add a column, add it to the row type; the SELECT lists follow. Times arrive as Unix
seconds (SQLite) or aware datetimes (PostgreSQL); ``as_datetime`` accepts both.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from ingestd import errors
from ingestd.keys import ApiKey
from ingestd.models import JSON, Event, Job, JobFilter, JobStatus, NewJob, Progress, Step, StoredFile

Time = float | datetime  # Unix seconds on SQLite, an aware datetime on PostgreSQL


class JobRow(NamedTuple):
    """A ``jobs`` row as selected with ``JOB_COLUMNS`` (the columns are these fields, in this order)."""

    id: str
    tenant: str
    pipeline: str
    status: str
    input: str
    files: str
    progress_stage: str | None
    progress_done: int
    progress_total: int
    result: str | None
    error: str | None
    attempt: int
    max_attempts: int
    priority: int
    run_at: Time
    ordering_key: str | None
    idempotency_key: str | None
    payload_hash: str | None
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    updated_at: Time
    expires_at: Time | None
    lease_owner: str | None
    lease_expires_at: Time | None
    cancel_requested: bool | int
    deadline_at: Time | None
    usage: str
    webhook_url: str | None
    units: float
    last_seq: int
    traceparent: str | None


class StepRow(NamedTuple):
    """A ``steps`` row as selected with ``STEP_COLUMNS``."""

    job_id: str
    key: str
    ok: bool | int
    output: str | None
    error: str | None
    attempts: int
    started_at: Time
    finished_at: Time
    usage: str


class EventRow(NamedTuple):
    """An ``events`` row as selected with ``EVENT_COLUMNS``."""

    job_id: str
    seq: int
    type: str
    data: str
    at: Time


class ApiKeyRow(NamedTuple):
    """An ``api_keys`` row as selected with ``API_KEY_COLUMNS`` (never the hash)."""

    key_id: str
    tenant: str
    scopes: str
    created_at: Time
    name: str | None
    expires_at: Time | None
    revoked_at: Time | None


class NewApiKey(NamedTuple):
    """An ``api_keys`` row as ``add_api_key`` inserts it (``NEW_API_KEY_COLUMNS``; the backend adds ``created_at``)."""

    key_hash: str
    tenant: str
    key_id: str
    scopes: str  # space-separated
    name: str | None
    expires_at: datetime | None  # last: SQLite binds it as Unix seconds (``sqlite_keys``)


class WorkerRow(NamedTuple):
    """A ``workers`` row as selected with ``WORKER_COLUMNS``."""

    id: str
    last_seen: Time
    jobs: int


def columns(fields: Sequence[str]) -> str:
    """The SELECT list of a row type (``columns(JobRow._fields)``): its field names, in order."""
    return ", ".join(fields)


def _first(row: Sequence[Any], n: int) -> Iterable[Any]:
    """The first ``n`` values of a row (a statement may return more after them, as ``CLAIM`` its order)."""
    return row if len(row) == n else itertools.islice(row, n)


JOB_COLUMNS = columns(JobRow._fields)
STEP_COLUMNS = columns(StepRow._fields)
EVENT_COLUMNS = columns(EventRow._fields)
API_KEY_COLUMNS = columns(ApiKeyRow._fields)
NEW_API_KEY_COLUMNS = columns(NewApiKey._fields)
WORKER_COLUMNS = columns(WorkerRow._fields)


# The terminal statuses as an SQL list, for ``status IN ...`` (inlined, not bound, so partial indexes apply).
TERMINAL_SQL = "(" + ", ".join(f"'{status}'" for status in JobStatus if status.terminal) + ")"


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


def idempotent_replay(existing: Job, new: NewJob) -> Job:
    """What a submit with a known ``Idempotency-Key`` returns: the existing job, if its payload is the same."""
    if existing.payload_hash != new.payload_hash:
        raise errors.IdempotencyConflict(job_id=existing.id)
    return existing


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
    r = JobRow._make(_first(row, len(JobRow._fields)))
    return Job(
        id=r.id,
        tenant=r.tenant,
        pipeline=r.pipeline,
        status=JobStatus(r.status),
        input=orjson.loads(r.input),
        files=decode_files(r.files) if r.files != "[]" else (),
        progress=Progress(r.progress_stage, r.progress_done, r.progress_total),
        result=loads(r.result),
        error=loads(r.error),
        attempt=r.attempt,
        max_attempts=r.max_attempts,
        priority=r.priority,
        run_at=_dt(r.run_at),
        ordering_key=r.ordering_key,
        idempotency_key=r.idempotency_key,
        payload_hash=r.payload_hash,
        created_at=_dt(r.created_at),
        started_at=as_datetime(r.started_at),
        finished_at=as_datetime(r.finished_at),
        updated_at=_dt(r.updated_at),
        expires_at=as_datetime(r.expires_at),
        lease_owner=r.lease_owner,
        lease_expires_at=as_datetime(r.lease_expires_at),
        cancel_requested=bool(r.cancel_requested),
        deadline_at=as_datetime(r.deadline_at),
        usage=orjson.loads(r.usage),
        webhook_url=r.webhook_url,
        units=r.units,
        traceparent=r.traceparent,
    )


def step_from_row(row: Sequence[Any]) -> Step:
    """A ``Step`` from a row selected with ``STEP_COLUMNS``."""
    r = StepRow._make(row)
    return Step(
        job_id=r.job_id,
        key=r.key,
        ok=bool(r.ok),
        output=loads(r.output),
        error=loads(r.error),
        attempts=r.attempts,
        started_at=_dt(r.started_at),
        finished_at=_dt(r.finished_at),
        usage=orjson.loads(r.usage),
    )


def step_row(step: Step, time_param: Callable[[datetime], Any]) -> StepRow:
    """The row that stores ``step`` (``STEP_COLUMNS``): JSON as text, times as ``time_param`` makes them."""
    return StepRow(
        step.job_id, step.key, step.ok, dumps(step.output), dumps_or_none(step.error), step.attempts,
        time_param(step.started_at), time_param(step.finished_at), dumps(step.usage),
    )  # fmt: skip


def event_from_row(row: Sequence[Any]) -> Event:
    """An ``Event`` from a row selected with ``EVENT_COLUMNS``."""
    r = EventRow._make(row)
    return Event(job_id=r.job_id, seq=r.seq, type=r.type, data=orjson.loads(r.data), at=_dt(r.at))


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    """An ``ApiKey`` from a row selected with ``API_KEY_COLUMNS``."""
    r = ApiKeyRow._make(row)
    return ApiKey(
        id=r.key_id,
        tenant=r.tenant,
        scopes=tuple(str(r.scopes).split()),
        created_at=_dt(r.created_at),
        name=r.name,
        expires_at=as_datetime(r.expires_at),
        revoked_at=as_datetime(r.revoked_at),
    )


def worker_from_row(row: Sequence[Any]) -> JSON:
    """A live worker (``live_workers``) from a row selected with ``WORKER_COLUMNS``."""
    r = WorkerRow._make(row)
    return {"id": r.id, "last_seen": as_datetime(r.last_seen), "jobs": r.jobs}


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


_EXHAUSTED_DETAIL = "the job's lease expired after {attempts} attempt(s): its worker stopped responding"


def exhausted_error(attempts: int) -> JSON:
    """The RFC 9457 error of a job whose worker kept dying until its attempts ran out."""
    return errors.problem_body(
        "attempts-exhausted", "Attempts exhausted", 500, _EXHAUSTED_DETAIL.format(attempts=attempts)
    )


# ``exhausted_error`` as JSON text with ``ATTEMPTS_MARK`` where the count goes, for SQL that fills it in per row.
ATTEMPTS_MARK = "{attempts}"
EXHAUSTED_ERROR_TEMPLATE = dumps(
    errors.problem_body("attempts-exhausted", "Attempts exhausted", 500, _EXHAUSTED_DETAIL)
)


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
