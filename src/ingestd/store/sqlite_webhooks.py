"""The SQLite store's ``WebhookStore``: endpoints and their event types, signing secrets (with a rotation's
overlap), the outbox with leases, and redelivery.

The outbox rows of a job's events are written in the transaction of the event itself: ``queue_finished`` by
``finish`` (``sqlite_jobs._finish_rows``), ``queue_progress`` by ``set_progress``. Rows are read by name
(``webhook_records``).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ingestd.models import JSON, WebhookMessage
from ingestd.store import webhook_records as wr
from ingestd.store.records import dumps
from ingestd.store.wakeup import Wake

T = TypeVar("T")

# Kept for the callers that import it from here.
new_webhook_secret = wr.new_webhook_secret


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


_INSERT = (
    "INSERT INTO webhook_outbox (id, job_id, tenant, url, event_type, payload, attempts, next_attempt_at, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
)
# Undelivered, not given up, and not in a dispatcher's hands right now (? = now).
_WAITING = "delivered_at IS NULL AND failed_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at < ?)"


def _subscribed(conn: sqlite3.Connection, tenant: str, event_type: str) -> list[str]:
    """The tenant's endpoint URLs subscribed to ``event_type``, oldest endpoint id first, each once."""
    urls: list[str] = []
    rows = conn.execute("SELECT url, event_types FROM webhook_endpoints WHERE tenant = ? ORDER BY id", (tenant,))
    for url, event_types in rows:
        if event_type in str(event_types).split() and url not in urls:
            urls.append(url)
    return urls


def queue_finished(conn: sqlite3.Connection, job: wr.Row, status: str, now: float) -> None:
    """In ``finish``'s transaction: one outbox row per target of the job's terminal event (its own
    ``webhook_url``, then each endpoint of its tenant subscribed to ``job.<status>``), and its pending
    ``job.progress`` messages dropped (the job is no longer running).

    ``job``: ``id``, ``last_seq`` (the job.finished event's number), ``tenant``, ``pipeline``, ``webhook_url``."""
    event = wr.event_of(status)
    urls = [job["webhook_url"]] if job["webhook_url"] else []
    urls += [u for u in _subscribed(conn, job["tenant"], event) if u not in urls]
    body = dumps(wr.payload(event, _at(now), {**job, "status": status}))
    conn.executemany(
        _INSERT,
        [(wr.message_id(job["id"], job["last_seq"], i), job["id"], job["tenant"], u, event, body, now, now)
         for i, u in enumerate(urls)],
    )  # fmt: skip
    conn.execute(
        f"DELETE FROM webhook_outbox WHERE job_id = ? AND event_type = ? AND {_WAITING}",
        (job["id"], wr.PROGRESS_EVENT, now),
    )


class _ProgressTarget(NamedTuple):
    """A row of the progress webhooks' query: the job's tenant and pipeline, one endpoint's url and event types."""

    tenant: str
    pipeline: str
    url: str
    event_types: str


def queue_progress(conn: sqlite3.Connection, job_id: str, seq: int, progress: JSON, now: float) -> None:
    """In ``set_progress``'s transaction: the new count to each endpoint subscribed to ``job.progress``.

    Coalesced: a progress message still waiting for its endpoint (not being sent) takes the new count; otherwise
    a new message is queued. So a receiver gets at most one progress message per dispatcher round, the latest."""
    # One indexed query, empty for the usual tenant without a progress endpoint: no cost beyond it.
    rows = [
        _ProgressTarget._make(row)
        for row in conn.execute(
            "SELECT j.tenant, j.pipeline, e.url, e.event_types FROM jobs AS j JOIN webhook_endpoints AS e"
            " ON e.tenant = j.tenant WHERE j.id = ? AND e.event_types LIKE ? ORDER BY e.id",
            (job_id, f"%{wr.PROGRESS_EVENT}%"),
        )
    ]
    urls = list(dict.fromkeys(r.url for r in rows if wr.PROGRESS_EVENT in str(r.event_types).split()))
    if not urls:
        return
    job = {"id": job_id, "tenant": rows[0].tenant, "pipeline": rows[0].pipeline, "status": "running"}
    body = dumps(wr.payload(wr.PROGRESS_EVENT, _at(now), job, progress=progress))
    for i, url in enumerate(urls):
        updated = conn.execute(
            f"UPDATE webhook_outbox SET payload = ? WHERE job_id = ? AND url = ? AND event_type = ? AND {_WAITING}",
            (body, job_id, url, wr.PROGRESS_EVENT, now),
        )
        if updated.rowcount == 0:
            message = wr.message_id(job_id, seq, i)
            conn.execute(_INSERT, (message, job_id, job["tenant"], url, wr.PROGRESS_EVENT, body, now, now))


# --- secrets ---------------------------------------------------------------------------------
def _secret(conn: sqlite3.Connection, wake: Wake, tenant: str, now: float) -> wr.SecretRow:
    """The tenant's secret row, created on first use."""
    row = conn.execute(f"SELECT {wr.SECRET_COLUMNS} FROM webhook_secrets WHERE tenant = ?", (tenant,)).fetchone()
    if row is not None:
        return wr.SecretRow._make(row)
    secret = wr.new_webhook_secret()
    conn.execute("INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES (?, ?, ?)", (tenant, secret, now))
    return wr.SecretRow(secret, None, None)


def _rotate(conn: sqlite3.Connection, wake: Wake, tenant: str, overlap: float, now: float) -> wr.SecretRow:
    old = _secret(conn, wake, tenant, now).secret
    row = wr.SecretRow(wr.new_webhook_secret(), old if overlap > 0 else None, now + overlap if overlap > 0 else None)
    conn.execute(
        "UPDATE webhook_secrets SET secret = ?, previous_secret = ?, previous_expires_at = ?, created_at = ? "
        "WHERE tenant = ?",
        (*row, now, tenant),
    )
    return row


# --- endpoints -------------------------------------------------------------------------------
def _add_endpoint(conn: sqlite3.Connection, wake: Wake, endpoint: wr.EndpointRow, tenant: str) -> None:
    conn.execute(
        f"INSERT INTO webhook_endpoints (tenant, {wr.ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (tenant, *endpoint)
    )


def _set_events(conn: sqlite3.Connection, wake: Wake, tenant: str, endpoint_id: str, types: str) -> Any:
    return conn.execute(
        f"UPDATE webhook_endpoints SET event_types = ? WHERE id = ? AND tenant = ? RETURNING {wr.ENDPOINT_COLUMNS}",
        (types, endpoint_id, tenant),
    ).fetchone()


def _delete_endpoint(conn: sqlite3.Connection, wake: Wake, tenant: str, endpoint_id: str) -> bool:
    cur = conn.execute("DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?", (endpoint_id, tenant))
    return cur.rowcount > 0


# --- the outbox ------------------------------------------------------------------------------
def _claim(
    conn: sqlite3.Connection, wake: Wake, worker_id: str, limit: int, lease_seconds: float, now: float
) -> list[Any]:
    return conn.execute(
        "UPDATE webhook_outbox SET lease_owner = ?, lease_expires_at = ? WHERE id IN ("
        f" SELECT id FROM webhook_outbox WHERE {_WAITING} AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at LIMIT ?)"
        f" RETURNING {wr.MESSAGE_SELECT}",
        (worker_id, now + lease_seconds, now, now, limit),
    ).fetchall()


_DUE = f"SELECT 1 FROM webhook_outbox WHERE {_WAITING} AND next_attempt_at <= ? LIMIT 1"


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


def _redeliver(conn: sqlite3.Connection, wake: Wake, tenant: str, message_id: str, now: float) -> wr.Redelivery:
    cur = conn.execute(
        "UPDATE webhook_outbox SET delivered_at = NULL, failed_at = NULL, next_attempt_at = ?, redelivered_at = ?"
        " WHERE id = ? AND tenant = ? AND (lease_expires_at IS NULL OR lease_expires_at < ?)",
        (now, now, message_id, tenant, now),
    )
    if cur.rowcount > 0:
        return "queued"
    found = conn.execute("SELECT 1 FROM webhook_outbox WHERE id = ? AND tenant = ?", (message_id, tenant))
    return "busy" if found.fetchone() else "missing"


_DELIVERIES = f"SELECT {wr.DELIVERY_COLUMNS} FROM webhook_outbox"


class SQLiteWebhooks:
    """``WebhookStore`` for ``SQLiteJobStore`` (a mixin over the store's transaction plumbing)."""

    if TYPE_CHECKING:

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def webhook_secret(self, tenant: str, *, rotate: bool = False) -> str:
        if rotate:
            return (await self._write(_rotate, tenant, 0.0, time.time())).secret
        return (await self._write(_secret, tenant, time.time())).secret

    async def rotate_webhook_secret(self, tenant: str, *, overlap_seconds: float) -> JSON:
        now = time.time()
        row = await self._write(_rotate, tenant, max(overlap_seconds, 0.0), now)
        return wr.secret_from_row(row, _at(now))

    async def webhook_secret_info(self, tenant: str) -> JSON:
        now = time.time()
        return wr.secret_from_row(await self._write(_secret, tenant, now), _at(now))

    async def webhook_signing_secrets(self, tenant: str) -> list[str]:
        now = time.time()
        return wr.signing_secrets(await self._write(_secret, tenant, now), _at(now))

    async def add_webhook_endpoint(
        self, tenant: str, url: str, event_types: Sequence[str] = wr.TERMINAL_EVENTS
    ) -> JSON:
        endpoint = wr.EndpointRow(uuid.uuid4().hex, url, wr.event_types_text(event_types), time.time())
        await self._write(_add_endpoint, endpoint, tenant)
        return wr.endpoint_from_row(endpoint)

    async def set_webhook_endpoint_events(
        self, tenant: str, endpoint_id: str, event_types: Sequence[str]
    ) -> JSON | None:
        row = await self._write(_set_events, tenant, endpoint_id, wr.event_types_text(event_types))
        return None if row is None else wr.endpoint_from_row(row)

    async def list_webhook_endpoints(self, tenant: str) -> list[JSON]:
        rows = await self._read(
            f"SELECT {wr.ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant = ? ORDER BY id", (tenant,)
        )
        return [wr.endpoint_from_row(r) for r in rows]

    async def delete_webhook_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        return await self._write(_delete_endpoint, tenant, endpoint_id)

    async def claim_webhooks(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[WebhookMessage]:
        # Every worker polls the outbox: look first (a read does not take the write lock), claim only when due.
        now = time.time()
        if not await self._read(_DUE, (now, now)):
            return []
        rows = await self._write(_claim, worker_id, limit, lease_seconds, now)
        return [wr.message_from_row(r) for r in rows]

    async def record_webhook_attempt(
        self, message_id: str, worker_id: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> bool:
        when = None if next_attempt_at is None else next_attempt_at.timestamp()
        return await self._write(_record, message_id, worker_id, error, when, time.time())

    async def redeliver_webhook(self, tenant: str, message_id: str) -> wr.Redelivery:
        return await self._write(_redeliver, tenant, message_id, time.time())

    async def webhook_deliveries(self, job_id: str) -> list[JSON]:
        rows = await self._read(f"{_DELIVERIES} WHERE job_id = ? ORDER BY created_at, id", (job_id,))
        now = _at(time.time())
        return [wr.delivery_from_row(r, now) for r in rows]

    async def webhook_delivery(self, tenant: str, message_id: str) -> JSON | None:
        rows = await self._read(f"{_DELIVERIES} WHERE id = ? AND tenant = ?", (message_id, tenant))
        now = _at(time.time())
        return wr.delivery_from_row(rows[0], now) if rows else None


__all__ = [
    "SQLiteWebhooks",
    "new_webhook_secret",
    "queue_finished",
    "queue_progress",
]
