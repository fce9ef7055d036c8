"""The PostgreSQL store's ``WebhookStore``: endpoints, signing secrets, and outbox claims with leases.

The outbox rows are written by ``finish`` in the finishing statement (``postgres_sql.TERMINAL_CTES``). Claims lock
due rows with ``FOR UPDATE SKIP LOCKED`` so several dispatchers never deliver the same message at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ingestd.models import JSON, WebhookMessage
from ingestd.store.postgres_base import PostgresBase
from ingestd.store.sqlite_webhooks import (
    DELIVERY_COLUMNS,
    delivery_from_row,
    endpoint_from_row,
    message_from_row,
    new_webhook_secret,
)

_MESSAGE_COLUMNS = "id, job_id, tenant, url, event_type, payload, attempts, created_at"

# $1 tenant, $2 a new secret: the existing secret, or the new one stored.
_SECRET = """
WITH ins AS (
    INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES ($1, $2, now())
    ON CONFLICT (tenant) DO NOTHING RETURNING secret
)
SELECT secret FROM ins UNION ALL SELECT secret FROM webhook_secrets WHERE tenant = $1 LIMIT 1
"""
_ROTATE = """
INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES ($1, $2, now())
ON CONFLICT (tenant) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at
"""
_CLAIM = f"""
UPDATE webhook_outbox SET lease_owner = $1, lease_expires_at = now() + $3::float8 * interval '1 second'
WHERE id IN (
    SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
        AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
) RETURNING {_MESSAGE_COLUMNS}
"""
# $1 message, $2 worker, $3 error, $4 next attempt: delivered (no error), retried later, or given up.
_RECORD = """
UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $3,
    delivered_at = CASE WHEN $3::text IS NULL THEN now() END,
    failed_at = CASE WHEN $3::text IS NOT NULL AND $4::timestamptz IS NULL THEN now() END,
    next_attempt_at = coalesce($4::timestamptz, next_attempt_at), lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND delivered_at IS NULL
"""


class PostgresWebhooks(PostgresBase):
    """``WebhookStore`` for ``PostgresJobStore``."""

    async def webhook_secret(self, tenant: str, *, rotate: bool = False) -> str:
        if rotate:
            secret = new_webhook_secret()
            await self._execute(_ROTATE, tenant, secret)
            return secret
        while True:  # a concurrent first use may commit between our INSERT and SELECT: then look again
            value = await self._fetchval(_SECRET, tenant, new_webhook_secret())
            if value is not None:
                return str(value)

    async def add_webhook_endpoint(self, tenant: str, url: str) -> JSON:
        row = await self._fetchrow(
            "INSERT INTO webhook_endpoints (id, tenant, url, created_at) VALUES ($1, $2, $3, now()) "
            "RETURNING id, url, created_at",
            uuid.uuid4().hex,
            tenant,
            url,
        )
        assert row is not None
        return endpoint_from_row(row)

    async def list_webhook_endpoints(self, tenant: str) -> list[JSON]:
        rows = await self._fetch(
            "SELECT id, url, created_at FROM webhook_endpoints WHERE tenant = $1 ORDER BY id", tenant, idempotent=True
        )
        return [endpoint_from_row(r) for r in rows]

    async def delete_webhook_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        status = await self._execute("DELETE FROM webhook_endpoints WHERE id = $1 AND tenant = $2", endpoint_id, tenant)
        return status != "DELETE 0"

    async def claim_webhooks(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[WebhookMessage]:
        rows = await self._fetch(_CLAIM, worker_id, limit, lease_seconds)
        return sorted((message_from_row(r) for r in rows), key=lambda m: (m.created_at, m.id))

    async def record_webhook_attempt(
        self, message_id: str, worker_id: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> bool:
        status = await self._execute(_RECORD, message_id, worker_id, error, next_attempt_at)
        return status != "UPDATE 0"

    async def webhook_deliveries(self, job_id: str) -> list[JSON]:
        rows = await self._fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE job_id = $1 ORDER BY created_at, id",
            job_id,
            idempotent=True,
        )
        return [delivery_from_row(r) for r in rows]


__all__ = ["PostgresWebhooks"]
