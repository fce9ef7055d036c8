"""The SQLite store's ``WebhookStore``: endpoints, signing secrets, and outbox claims with leases.

The outbox rows themselves are written by ``finish`` (``sqlite_jobs._finish_rows``) in the finishing
transaction; ``webhook_targets`` is what it asks for the URLs (the job's own, then the tenant's endpoints).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ingestd.models import JSON, WebhookMessage
from ingestd.store import records
from ingestd.store.wakeup import Wake

T = TypeVar("T")


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def webhook_targets(conn: sqlite3.Connection, tenant: str, job_webhook_url: str | None) -> list[str]:
    """Where a finished job's notification goes: its own ``webhook_url``, then each endpoint of its tenant."""
    urls = records.webhook_urls(job_webhook_url)
    for (url,) in conn.execute("SELECT url FROM webhook_endpoints WHERE tenant = ? ORDER BY id", (tenant,)):
        if url not in urls:
            urls.append(url)
    return urls


def _secret(conn: sqlite3.Connection, wake: Wake, tenant: str, rotate: bool, now: float) -> str:
    row = conn.execute("SELECT secret FROM webhook_secrets WHERE tenant = ?", (tenant,)).fetchone()
    if row is not None and not rotate:
        return str(row[0])
    secret = new_webhook_secret()
    conn.execute(
        "INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (tenant) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        (tenant, secret, now),
    )
    return secret


def _add_endpoint(conn: sqlite3.Connection, wake: Wake, endpoint_id: str, tenant: str, url: str, now: float) -> None:
    conn.execute(
        "INSERT INTO webhook_endpoints (id, tenant, url, created_at) VALUES (?, ?, ?, ?)",
        (endpoint_id, tenant, url, now),
    )


def _delete_endpoint(conn: sqlite3.Connection, wake: Wake, tenant: str, endpoint_id: str) -> bool:
    cur = conn.execute("DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?", (endpoint_id, tenant))
    return cur.rowcount > 0


_MESSAGE_COLUMNS = "id, job_id, tenant, url, event_type, payload, attempts, created_at"


def _claim(
    conn: sqlite3.Connection, wake: Wake, worker_id: str, limit: int, lease_seconds: float, now: float
) -> list[Any]:
    return conn.execute(
        f"UPDATE webhook_outbox SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
        " SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?"
        " AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY next_attempt_at LIMIT ?)"
        f" RETURNING {_MESSAGE_COLUMNS}",
        (worker_id, now + lease_seconds, now, now, limit),
    ).fetchall()


_DUE = (
    "SELECT 1 FROM webhook_outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? AND failed_at IS NULL"
    " AND (lease_expires_at IS NULL OR lease_expires_at < ?) LIMIT 1"
)


def _record(
    conn: sqlite3.Connection,
    wake: Wake,
    message_id: str,
    worker_id: str,
    error: str | None,
    next_attempt_at: float | None,
    now: float,
) -> bool:
    delivered = now if error is None else None
    failed = now if error is not None and next_attempt_at is None else None
    cur = conn.execute(
        "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, delivered_at = ?, failed_at = ?,"
        " next_attempt_at = coalesce(?, next_attempt_at), lease_owner = NULL, lease_expires_at = NULL"
        " WHERE id = ? AND lease_owner = ? AND delivered_at IS NULL",
        (error, delivered, failed, next_attempt_at, message_id, worker_id),
    )
    return cur.rowcount > 0


def message_from_row(row: Sequence[Any]) -> WebhookMessage:
    created = records.as_datetime(row[7])
    assert created is not None
    return WebhookMessage(row[0], row[1], row[2], row[3], row[4], records.loads(row[5]), row[6], created)


def delivery_from_row(row: Sequence[Any]) -> JSON:
    """``(id, url, event_type, attempts, last_error, next_attempt_at, delivered_at, failed_at)`` as JSON."""
    status = "delivered" if row[6] is not None else "failed" if row[7] is not None else "pending"
    times = [records.as_datetime(v) for v in row[5:8]]
    return {
        "id": row[0],
        "url": row[1],
        "event_type": row[2],
        "attempts": row[3],
        "last_error": row[4],
        "next_attempt_at": None if status != "pending" or times[0] is None else times[0].isoformat(),
        "delivered_at": times[1].isoformat() if times[1] else None,
        "status": status,
    }


DELIVERY_COLUMNS = "id, url, event_type, attempts, last_error, next_attempt_at, delivered_at, failed_at"


def endpoint_from_row(row: Sequence[Any]) -> JSON:
    created = records.as_datetime(row[2])
    return {"id": row[0], "url": row[1], "created_at": created.isoformat() if created else None}


class SQLiteWebhooks:
    """``WebhookStore`` for ``SQLiteJobStore`` (a mixin over the store's transaction plumbing)."""

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def webhook_secret(self, tenant: str, *, rotate: bool = False) -> str:
        return await self._write(_secret, tenant, rotate, time.time())

    async def add_webhook_endpoint(self, tenant: str, url: str) -> JSON:
        endpoint_id, now = uuid.uuid4().hex, time.time()
        await self._write(_add_endpoint, endpoint_id, tenant, url, now)
        return endpoint_from_row((endpoint_id, url, now))

    async def list_webhook_endpoints(self, tenant: str) -> list[JSON]:
        rows = await self._read(
            "SELECT id, url, created_at FROM webhook_endpoints WHERE tenant = ? ORDER BY id", (tenant,)
        )
        return [endpoint_from_row(r) for r in rows]

    async def delete_webhook_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        return await self._write(_delete_endpoint, tenant, endpoint_id)

    async def claim_webhooks(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[WebhookMessage]:
        # Every worker polls the outbox: look first (a read does not take the write lock), claim only when due.
        now = time.time()
        if not await self._read(_DUE, (now, now)):
            return []
        rows = await self._write(_claim, worker_id, limit, lease_seconds, now)
        return [message_from_row(r) for r in rows]

    async def record_webhook_attempt(
        self, message_id: str, worker_id: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> bool:
        when = None if next_attempt_at is None else next_attempt_at.timestamp()
        return await self._write(_record, message_id, worker_id, error, when, time.time())

    async def webhook_deliveries(self, job_id: str) -> list[JSON]:
        rows = await self._read(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE job_id = ? ORDER BY created_at, id", (job_id,)
        )
        return [delivery_from_row(r) for r in rows]


__all__ = [
    "SQLiteWebhooks",
    "delivery_from_row",
    "endpoint_from_row",
    "message_from_row",
    "new_webhook_secret",
    "webhook_targets",
]
