"""What both stores' webhook code shares: event types, message ids, the body of a notification, rows as JSON.

Rows are read by name, as in ``records``: each table read has a typed row (``MessageRow``, ``DeliveryRow``,
``EndpointRow``, ``SecretRow``), a ``NamedTuple`` whose fields are the selected columns in order; each backend
selects its ``..._COLUMNS`` and hands the row (a tuple or an ``asyncpg.Record``) to the functions below.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ingestd.models import JSON, WebhookMessage
from ingestd.store import records

Row = Mapping[str, Any]
Redelivery = Literal["queued", "busy", "missing"]  # what a redelivery request found

# The events a job's own ``webhook_url`` gets, and an endpoint unless it subscribes otherwise.
TERMINAL_EVENTS = ("job.succeeded", "job.partial", "job.failed", "job.canceled")
PROGRESS_EVENT = "job.progress"  # opt-in: a running job's progress, coalesced (see ``queue_progress``)
EVENT_TYPES = (*TERMINAL_EVENTS, PROGRESS_EVENT)


class MessageRow(NamedTuple):
    """A ``webhook_outbox`` row as claimed with ``MESSAGE_SELECT``."""

    id: str
    job_id: str
    tenant: str
    url: str
    event_type: str
    payload: str
    attempts: int
    window_start: Any  # the retry window starts when it was written, or when it was last redelivered


class DeliveryRow(NamedTuple):
    """A ``webhook_outbox`` row as selected with ``DELIVERY_COLUMNS``."""

    id: str
    job_id: str
    url: str
    event_type: str
    attempts: int
    last_error: str | None
    next_attempt_at: Any
    delivered_at: Any
    failed_at: Any
    created_at: Any
    redelivered_at: Any
    lease_expires_at: Any


class EndpointRow(NamedTuple):
    """A ``webhook_endpoints`` row as selected with ``ENDPOINT_COLUMNS``."""

    id: str
    url: str
    event_types: str  # space-separated
    created_at: Any


class SecretRow(NamedTuple):
    """A ``webhook_secrets`` row as selected with ``SECRET_COLUMNS``."""

    secret: str
    previous_secret: str | None
    previous_expires_at: Any


MESSAGE_SELECT = records.columns(MessageRow._fields).replace(
    "window_start", "coalesce(redelivered_at, created_at) AS window_start"
)
DELIVERY_COLUMNS = records.columns(DeliveryRow._fields)
ENDPOINT_COLUMNS = records.columns(EndpointRow._fields)
SECRET_COLUMNS = records.columns(SecretRow._fields)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def message_id(job_id: str, seq: int, ordinal: int) -> str:
    """The ``webhook-id`` of the notification of a job's event ``seq`` to its ``ordinal``-th target: the same
    on every retry, new for each event (a retried job that ends again notifies again), and sorting the targets
    of one event in order. PostgreSQL computes the same (``postgres_webhooks.MESSAGE_ID``)."""
    digest = hashlib.md5(f"{job_id}-{seq}".encode(), usedforsecurity=False).hexdigest()
    return f"msg_{digest[:24]}_{ordinal:03d}"


def event_of(status: str) -> str:
    """The event type of a job that ended with ``status`` (``job.succeeded``...)."""
    return f"job.{status}"


def payload(event_type: str, at: datetime, job: Row, **extra: Any) -> JSON:
    """The Standard Webhooks body: ``{"type", "timestamp", "data": {"id", "tenant", "pipeline", "status"}}``.

    Kept small on purpose: fetch the result with the API. PostgreSQL builds the same document in SQL
    (``postgres_webhooks``); keep the two in step."""
    data = {"id": job["id"], "tenant": job["tenant"], "pipeline": job["pipeline"], "status": job["status"], **extra}
    return {"type": event_type, "timestamp": at.isoformat(), "data": data}


def event_types_text(event_types: Iterable[str]) -> str:
    """Event types as stored (space-separated, in ``EVENT_TYPES`` order)."""
    wanted = set(event_types)
    return " ".join(t for t in EVENT_TYPES if t in wanted)


def message_from_row(row: Sequence[Any]) -> WebhookMessage:
    """A claimed message; its ``created_at`` is the start of its retry window (written, or last redelivered)."""
    r = MessageRow._make(row)
    start = records.as_datetime(r.window_start)
    assert start is not None
    return WebhookMessage(
        id=r.id,
        job_id=r.job_id,
        tenant=r.tenant,
        url=r.url,
        event_type=r.event_type,
        payload=records.loads(r.payload),
        attempts=r.attempts,
        created_at=start,
    )


def _iso(value: float | datetime | None) -> str | None:
    when = records.as_datetime(value)
    return when.isoformat() if when else None


def delivery_status(r: DeliveryRow, now: datetime) -> str:
    """pending, sending (leased by a dispatcher now), delivered or failed (given up)."""
    if r.delivered_at is not None:
        return "delivered"
    if r.failed_at is not None:
        return "failed"
    lease = records.as_datetime(r.lease_expires_at)
    return "sending" if lease is not None and lease > now else "pending"


def delivery_from_row(row: Sequence[Any], now: datetime) -> JSON:
    """A delivery as the API shows it (``GET /v1/jobs/{id}/webhooks``, ``GET /v1/webhooks/deliveries/{id}``)."""
    r = DeliveryRow._make(row)
    status = delivery_status(r, now)
    waiting = status in ("pending", "sending")
    return {
        "id": r.id,
        "job_id": r.job_id,
        "url": r.url,
        "event_type": r.event_type,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "next_attempt_at": _iso(r.next_attempt_at) if waiting else None,
        "delivered_at": _iso(r.delivered_at),
        "created_at": _iso(r.created_at),
        "redelivered_at": _iso(r.redelivered_at),
        "status": "pending" if status == "sending" else status,
    }


def endpoint_from_row(row: Sequence[Any]) -> JSON:
    """An endpoint as the API shows it."""
    r = EndpointRow._make(row)
    return {"id": r.id, "url": r.url, "event_types": str(r.event_types).split(), "created_at": _iso(r.created_at)}


def signing_secrets(row: Sequence[Any] | None, now: datetime) -> list[str]:
    """The secrets a message is signed with: the current one, then the previous one during its overlap."""
    if row is None:
        return []
    r = SecretRow._make(row)
    until = records.as_datetime(r.previous_expires_at)
    previous = r.previous_secret if until is not None and until > now else None
    return [r.secret, *([previous] if previous else [])]


def secret_from_row(row: Sequence[Any], now: datetime) -> JSON:
    """``{"secret", "previous_expires_at"}`` (the latter None when no older secret signs any more)."""
    r = SecretRow._make(row)
    until = records.as_datetime(r.previous_expires_at)
    live = r.previous_secret is not None and until is not None and until > now
    return {"secret": r.secret, "previous_expires_at": until.isoformat() if live and until else None}


__all__ = [
    "DELIVERY_COLUMNS",
    "ENDPOINT_COLUMNS",
    "EVENT_TYPES",
    "MESSAGE_SELECT",
    "PROGRESS_EVENT",
    "SECRET_COLUMNS",
    "TERMINAL_EVENTS",
    "DeliveryRow",
    "EndpointRow",
    "MessageRow",
    "Redelivery",
    "SecretRow",
    "delivery_from_row",
    "endpoint_from_row",
    "event_of",
    "event_types_text",
    "message_from_row",
    "message_id",
    "new_webhook_secret",
    "payload",
    "secret_from_row",
    "signing_secrets",
]
