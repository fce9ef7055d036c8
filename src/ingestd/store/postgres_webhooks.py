"""The PostgreSQL store's ``WebhookStore``: endpoints and their event types, signing secrets (with a rotation's
overlap), the outbox with leases, and redelivery.

The outbox rows of a job's events are written in the statement of the event itself: ``FINISHED_HOOK_CTES``
follows the CTE ``done`` of every terminal transition (``postgres_sql.TERMINAL_CTES``), ``PROGRESS_HOOK_CTES``
the CTE ``upd`` of ``postgres_sql.SET_PROGRESS``. Claims lock due rows with ``FOR UPDATE SKIP LOCKED`` so several
dispatchers never deliver the same message at once. Rows are read by name (``webhook_records``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from ingestd.models import JSON, WebhookMessage
from ingestd.store import webhook_records as wr
from ingestd.store.postgres_base import PostgresBase

# webhook_records.message_id in SQL, over a row's (id, last_seq, ord).
MESSAGE_ID = "'msg_' || left(md5(id || '-' || last_seq), 24) || '_' || lpad(ord::text, 3, '0')"
_TIMESTAMP = """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
_INSERT = (
    "INSERT INTO webhook_outbox (id, job_id, tenant, url, event_type, payload, attempts, next_attempt_at, created_at)"
)
# Undelivered, not given up, not in a dispatcher's hands right now (columns of the alias ``o``).
_WAITING = (
    "o.delivered_at IS NULL AND o.failed_at IS NULL AND (o.lease_expires_at IS NULL OR o.lease_expires_at < now())"
)

# After a CTE ``done`` of jobs that just ended, returning (id, last_seq, tenant, pipeline, webhook_url, status):
# one outbox row per target of job.<status> (the job's own URL, then each subscribed endpoint of its tenant by id,
# each URL once, numbered from 0 as in ``sqlite_webhooks.queue_finished``), and the job's waiting progress
# messages dropped. The body mirrors ``webhook_records.payload``.
FINISHED_HOOK_CTES = f"""
, hook_targets AS (
    SELECT done.id, done.last_seq, done.tenant, done.pipeline, done.status::text AS status, t.url, t.ord
    FROM done, LATERAL (
        SELECT u.url, row_number() OVER (ORDER BY min(u.prio), min(u.eid)) - 1 AS ord FROM (
            SELECT done.webhook_url AS url, 0 AS prio, '' AS eid WHERE done.webhook_url IS NOT NULL
            UNION ALL
            SELECT e.url, 1, e.id FROM webhook_endpoints AS e WHERE e.tenant = done.tenant
                AND 'job.' || done.status::text = ANY(string_to_array(e.event_types, ' '))
        ) AS u GROUP BY u.url
    ) AS t
), finished_hooks AS (
    {_INSERT}
    SELECT {MESSAGE_ID}, id, tenant, url, 'job.' || status, json_build_object(
        'type', 'job.' || status,
        'timestamp', {_TIMESTAMP},
        'data', json_build_object('id', id, 'tenant', tenant, 'pipeline', pipeline, 'status', status))::text,
        0, now(), now()
    FROM hook_targets
    ON CONFLICT (id) DO NOTHING
), dropped_progress_hooks AS (
    DELETE FROM webhook_outbox AS o USING done
    WHERE o.job_id = done.id AND o.event_type = 'job.progress' AND {_WAITING}
)"""

# After a CTE ``upd`` returning (id, last_seq, tenant, pipeline) of a job whose progress was just set, with the
# progress (JSON text) as parameter $6: the new count to each endpoint subscribed to job.progress, coalesced like
# ``sqlite_webhooks.queue_progress`` (a waiting message takes the new count, else a new one is queued).
PROGRESS_HOOK_CTES = f"""
, progress_hooks AS (
    SELECT upd.id, upd.last_seq, upd.tenant, t.url, t.ord, json_build_object(
        'type', 'job.progress',
        'timestamp', {_TIMESTAMP},
        'data', json_build_object('id', upd.id, 'tenant', upd.tenant, 'pipeline', upd.pipeline, 'status', 'running',
            'progress', $6::json))::text AS body
    FROM upd, LATERAL (
        SELECT e.url, row_number() OVER (ORDER BY min(e.id)) - 1 AS ord FROM webhook_endpoints AS e
        WHERE e.tenant = upd.tenant AND 'job.progress' = ANY(string_to_array(e.event_types, ' ')) GROUP BY e.url
    ) AS t
), progress_updated AS (
    UPDATE webhook_outbox AS o SET payload = h.body FROM progress_hooks AS h
    WHERE o.job_id = h.id AND o.url = h.url AND o.event_type = 'job.progress' AND {_WAITING}
    RETURNING o.url
), progress_queued AS (
    {_INSERT}
    SELECT {MESSAGE_ID}, id, tenant, url, 'job.progress', body, 0, now(), now()
    FROM progress_hooks WHERE url NOT IN (SELECT url FROM progress_updated)
    ON CONFLICT (id) DO NOTHING
)"""

_SECRET_RETURNING = f"RETURNING {wr.SECRET_COLUMNS}"
# $1 tenant, $2 a new secret: the existing secret row, or the new one stored.
_SECRET = f"""
WITH ins AS (
    INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES ($1, $2, now())
    ON CONFLICT (tenant) DO NOTHING {_SECRET_RETURNING}
)
SELECT * FROM ins UNION ALL
SELECT {wr.SECRET_COLUMNS} FROM webhook_secrets WHERE tenant = $1 LIMIT 1
"""
# $1 tenant, $2 the new secret, $3 overlap seconds: the old secret keeps signing until now + $3 (none when 0).
_ROTATE = f"""
INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES ($1, $2, now())
ON CONFLICT (tenant) DO UPDATE SET
    previous_secret = CASE WHEN $3::float8 > 0 THEN webhook_secrets.secret END,
    previous_expires_at = CASE WHEN $3::float8 > 0 THEN now() + $3::float8 * interval '1 second' END,
    secret = excluded.secret, created_at = excluded.created_at
{_SECRET_RETURNING}
"""
_CLAIM = f"""
UPDATE webhook_outbox SET lease_owner = $1, lease_expires_at = now() + $3::float8 * interval '1 second'
WHERE id IN (
    SELECT id FROM webhook_outbox AS o WHERE {_WAITING} AND o.next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
) RETURNING {wr.MESSAGE_SELECT}
"""
# $1 message, $2 worker, $3 error, $4 next attempt: delivered (no error), retried later, or given up.
_RECORD = """
UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $3,
    delivered_at = CASE WHEN $3::text IS NULL THEN now() END,
    failed_at = CASE WHEN $3::text IS NOT NULL AND $4::timestamptz IS NULL THEN now() END,
    next_attempt_at = coalesce($4::timestamptz, next_attempt_at), lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND delivered_at IS NULL
"""
_REDELIVER = """
UPDATE webhook_outbox AS o SET delivered_at = NULL, failed_at = NULL, next_attempt_at = now(), redelivered_at = now()
WHERE id = $2 AND tenant = $1 AND (o.lease_expires_at IS NULL OR o.lease_expires_at < now())
"""
_ENDPOINTS = wr.ENDPOINT_COLUMNS
_DELIVERIES = f"SELECT {wr.DELIVERY_COLUMNS} FROM webhook_outbox"


class PostgresWebhooks(PostgresBase):
    """``WebhookStore`` for ``PostgresJobStore``."""

    async def _secret_row(self, tenant: str) -> wr.SecretRow:
        while True:  # a concurrent first use may commit between our INSERT and SELECT: then look again
            row = await self._fetchrow(_SECRET, tenant, wr.new_webhook_secret())
            if row is not None:
                return wr.SecretRow._make(row)

    async def webhook_secret(self, tenant: str, *, rotate: bool = False) -> str:
        if rotate:
            return str((await self.rotate_webhook_secret(tenant, overlap_seconds=0))["secret"])
        return (await self._secret_row(tenant)).secret

    async def rotate_webhook_secret(self, tenant: str, *, overlap_seconds: float) -> JSON:
        row = await self._fetchrow(_ROTATE, tenant, wr.new_webhook_secret(), max(overlap_seconds, 0.0))
        assert row is not None
        return wr.secret_from_row(row, datetime.now(UTC))

    async def webhook_secret_info(self, tenant: str) -> JSON:
        return wr.secret_from_row(await self._secret_row(tenant), datetime.now(UTC))

    async def webhook_signing_secrets(self, tenant: str) -> list[str]:
        return wr.signing_secrets(await self._secret_row(tenant), datetime.now(UTC))

    async def add_webhook_endpoint(
        self, tenant: str, url: str, event_types: Sequence[str] = wr.TERMINAL_EVENTS
    ) -> JSON:
        row = await self._fetchrow(
            "INSERT INTO webhook_endpoints (id, tenant, url, event_types, created_at) VALUES ($1, $2, $3, $4, now()) "
            f"RETURNING {_ENDPOINTS}",
            uuid.uuid4().hex,
            tenant,
            url,
            wr.event_types_text(event_types),
        )
        assert row is not None
        return wr.endpoint_from_row(row)

    async def set_webhook_endpoint_events(
        self, tenant: str, endpoint_id: str, event_types: Sequence[str]
    ) -> JSON | None:
        row = await self._fetchrow(
            f"UPDATE webhook_endpoints SET event_types = $3 WHERE id = $1 AND tenant = $2 RETURNING {_ENDPOINTS}",
            endpoint_id,
            tenant,
            wr.event_types_text(event_types),
        )
        return None if row is None else wr.endpoint_from_row(row)

    async def list_webhook_endpoints(self, tenant: str) -> list[JSON]:
        rows = await self._fetch(
            f"SELECT {_ENDPOINTS} FROM webhook_endpoints WHERE tenant = $1 ORDER BY id", tenant, idempotent=True
        )
        return [wr.endpoint_from_row(r) for r in rows]

    async def delete_webhook_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        status = await self._execute("DELETE FROM webhook_endpoints WHERE id = $1 AND tenant = $2", endpoint_id, tenant)
        return status != "DELETE 0"

    async def claim_webhooks(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[WebhookMessage]:
        rows = await self._fetch(_CLAIM, worker_id, limit, lease_seconds)
        return sorted((wr.message_from_row(r) for r in rows), key=lambda m: (m.created_at, m.id))

    async def record_webhook_attempt(
        self, message_id: str, worker_id: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> bool:
        status = await self._execute(_RECORD, message_id, worker_id, error, next_attempt_at)
        return status != "UPDATE 0"

    async def redeliver_webhook(self, tenant: str, message_id: str) -> wr.Redelivery:
        if await self._execute(_REDELIVER, tenant, message_id) != "UPDATE 0":
            return "queued"
        found = await self._fetchval("SELECT 1 FROM webhook_outbox WHERE id = $1 AND tenant = $2", message_id, tenant)
        return "busy" if found else "missing"

    async def webhook_deliveries(self, job_id: str) -> list[JSON]:
        rows = await self._fetch(f"{_DELIVERIES} WHERE job_id = $1 ORDER BY created_at, id", job_id, idempotent=True)
        now = datetime.now(UTC)
        return [wr.delivery_from_row(r, now) for r in rows]

    async def webhook_delivery(self, tenant: str, message_id: str) -> JSON | None:
        row = await self._fetchrow(f"{_DELIVERIES} WHERE id = $1 AND tenant = $2", message_id, tenant, idempotent=True)
        return None if row is None else wr.delivery_from_row(row, datetime.now(UTC))


__all__ = ["FINISHED_HOOK_CTES", "MESSAGE_ID", "PROGRESS_HOOK_CTES", "PostgresWebhooks"]
