"""What both stores' webhook code shares: event types, message ids, the body of a notification, rows as JSON.

Rows are read by name: each backend selects the columns named here (``MESSAGE_COLUMNS``, ``DELIVERY_COLUMNS``,
``ENDPOINT_COLUMNS``) and hands a mapping of them (a ``dict`` or an ``asyncpg.Record``) to the functions below.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from ingestd.models import JSON, WebhookMessage
from ingestd.store import records

Row = Mapping[str, Any]
Redelivery = Literal["queued", "busy", "missing"]  # what a redelivery request found

# The events a job's own ``webhook_url`` gets, and an endpoint unless it subscribes otherwise.
TERMINAL_EVENTS = ("job.succeeded", "job.partial", "job.failed", "job.canceled")
PROGRESS_EVENT = "job.progress"  # opt-in: a running job's progress, coalesced (see ``queue_progress``)
EVENT_TYPES = (*TERMINAL_EVENTS, PROGRESS_EVENT)

MESSAGE_COLUMNS = ("id", "job_id", "tenant", "url", "event_type", "payload", "attempts", "window_start")
# The retry window of a message starts when it was written, or when it was last redelivered.
MESSAGE_SELECT = (
    "id, job_id, tenant, url, event_type, payload, attempts, coalesce(redelivered_at, created_at) AS window_start"
)
DELIVERY_COLUMNS = (
    "id",
    "job_id",
    "url",
    "event_type",
    "attempts",
    "last_error",
    "next_attempt_at",
    "delivered_at",
    "failed_at",
    "created_at",
    "redelivered_at",
    "lease_expires_at",
)
ENDPOINT_COLUMNS = ("id", "url", "event_types", "created_at")


def named(columns: Iterable[str], row: Iterable[Any]) -> dict[str, Any]:
    """A SQLite row (a tuple in ``columns`` order) as a mapping by column name."""
    return dict(zip(columns, row, strict=True))


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


def message_from_row(row: Row) -> WebhookMessage:
    """A claimed message; its ``created_at`` is the start of its retry window (written, or last redelivered)."""
    start = records.as_datetime(row["window_start"])
    assert start is not None
    return WebhookMessage(
        id=row["id"],
        job_id=row["job_id"],
        tenant=row["tenant"],
        url=row["url"],
        event_type=row["event_type"],
        payload=records.loads(row["payload"]),
        attempts=row["attempts"],
        created_at=start,
    )


def _iso(value: float | datetime | None) -> str | None:
    when = records.as_datetime(value)
    return when.isoformat() if when else None


def delivery_status(row: Row, now: datetime) -> str:
    """pending, sending (leased by a dispatcher now), delivered or failed (given up)."""
    if row["delivered_at"] is not None:
        return "delivered"
    if row["failed_at"] is not None:
        return "failed"
    lease = records.as_datetime(row["lease_expires_at"])
    return "sending" if lease is not None and lease > now else "pending"


def delivery_from_row(row: Row, now: datetime) -> JSON:
    """A delivery as the API shows it (``GET /v1/jobs/{id}/webhooks``, ``GET /v1/webhooks/deliveries/{id}``)."""
    status = delivery_status(row, now)
    waiting = status in ("pending", "sending")
    return {
        "id": row["id"],
        "job_id": row["job_id"],
        "url": row["url"],
        "event_type": row["event_type"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "next_attempt_at": _iso(row["next_attempt_at"]) if waiting else None,
        "delivered_at": _iso(row["delivered_at"]),
        "created_at": _iso(row["created_at"]),
        "redelivered_at": _iso(row["redelivered_at"]),
        "status": "pending" if status == "sending" else status,
    }


def endpoint_from_row(row: Row) -> JSON:
    return {
        "id": row["id"],
        "url": row["url"],
        "event_types": str(row["event_types"]).split(),
        "created_at": _iso(row["created_at"]),
    }


def signing_secrets(row: Row | None, now: datetime) -> list[str]:
    """The secrets a message is signed with: the current one, then the previous one during its overlap."""
    if row is None:
        return []
    until = records.as_datetime(row["previous_expires_at"])
    previous = row["previous_secret"] if until is not None and until > now else None
    return [row["secret"], *([previous] if previous else [])]


def secret_from_row(row: Row, now: datetime) -> JSON:
    """``{"secret", "previous_expires_at"}`` (the latter None when no older secret signs any more)."""
    until = records.as_datetime(row["previous_expires_at"])
    live = row["previous_secret"] is not None and until is not None and until > now
    return {"secret": row["secret"], "previous_expires_at": until.isoformat() if live and until else None}


__all__ = [
    "DELIVERY_COLUMNS",
    "ENDPOINT_COLUMNS",
    "EVENT_TYPES",
    "MESSAGE_COLUMNS",
    "MESSAGE_SELECT",
    "PROGRESS_EVENT",
    "TERMINAL_EVENTS",
    "Redelivery",
    "delivery_from_row",
    "endpoint_from_row",
    "event_of",
    "event_types_text",
    "message_from_row",
    "message_id",
    "named",
    "new_webhook_secret",
    "payload",
    "secret_from_row",
    "signing_secrets",
]
