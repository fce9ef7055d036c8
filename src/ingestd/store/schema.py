"""The one schema (SQLAlchemy Core) shared by SQLite and PostgreSQL; they differ only in dialect details.

Times are ``timestamptz`` on PostgreSQL and Unix seconds (``REAL``) on SQLite, where comparisons on plain numbers
are fastest and unambiguous. JSON documents are stored as text on both (encoded with orjson), so the two
backends read and write them the same way.

The migrations in ``migrations/versions`` create exactly this schema; ``tests/store/test_migrations.py`` checks
that they do not drift apart.

Indexes exist for what must stay O(log n) with a million queued jobs: claiming (``jobs_queued``,
``jobs_leases``, ``jobs_ordering``), idempotency (``jobs_idempotency``), listing (``jobs_tenant``), retention
(``jobs_expiry``) and ETAs (``jobs_durations``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

Timestamp = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
JsonText = sa.Text()
Bytes = sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", JsonText, nullable=False),
    sa.Column("files", JsonText, nullable=False),
    sa.Column("progress_stage", sa.Text),
    sa.Column("progress_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("progress_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", JsonText),
    sa.Column("error", JsonText),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_at", Timestamp, nullable=False),
    sa.Column("ordering_key", sa.Text),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("payload_hash", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp),
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_expires_at", Timestamp),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deadline_seconds", sa.Float),
    sa.Column("deadline_at", Timestamp),
    sa.Column("retention_seconds", sa.Float, nullable=False),
    sa.Column("usage", JsonText, nullable=False),
    sa.Column("webhook_url", sa.Text),
    sa.Column("units", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),  # the newest event's seq
    sa.Column("traceparent", sa.Text),  # W3C trace context of the submit (the job's spans are its children)
)

_queued = jobs.c.status == "queued"
sa.Index(
    "jobs_queued",
    jobs.c.priority.desc(),
    jobs.c.run_at,
    jobs.c.id,
    postgresql_where=_queued,
    sqlite_where=_queued,
)
_running = jobs.c.status == "running"
sa.Index("jobs_leases", jobs.c.lease_expires_at, postgresql_where=_running, sqlite_where=_running)
_keyed = jobs.c.ordering_key.isnot(None)
sa.Index(
    "jobs_ordering",
    jobs.c.ordering_key,
    jobs.c.status,
    jobs.c.id,
    postgresql_where=_keyed,
    sqlite_where=_keyed,
)
sa.Index("jobs_idempotency", jobs.c.tenant, jobs.c.idempotency_key, unique=True)
sa.Index("jobs_tenant", jobs.c.tenant, jobs.c.id)
sa.Index("jobs_tenant_queued", jobs.c.tenant, postgresql_where=_queued, sqlite_where=_queued)
_expiring = jobs.c.expires_at.isnot(None)
sa.Index("jobs_expiry", jobs.c.expires_at, postgresql_where=_expiring, sqlite_where=_expiring)
_succeeded = jobs.c.status == "succeeded"
sa.Index(
    "jobs_durations",
    jobs.c.pipeline,
    jobs.c.finished_at,
    postgresql_where=_succeeded,
    sqlite_where=_succeeded,
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("output", JsonText),
    sa.Column("error", JsonText),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=False),
    sa.Column("usage", JsonText, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("data", JsonText, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("last_seen", Timestamp, nullable=False),
    sa.Column("jobs", sa.Integer, nullable=False, server_default="0"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("key_id", sa.String(40)),  # public: shown and logged (migration 0004)
    sa.Column("name", sa.Text),
    sa.Column("scopes", sa.Text, nullable=False, server_default="jobs:write jobs:read memory:read"),
    sa.Column("expires_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
)
sa.Index("api_keys_key_id", api_keys.c.key_id, unique=True)
sa.Index("api_keys_tenant", api_keys.c.tenant)

webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("job_id", sa.String(32), nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", JsonText, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    # migration 0002: a dispatcher's lease on the row while it delivers, and when it was given up
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_expires_at", Timestamp),
    sa.Column("failed_at", Timestamp),
    sa.Column("redelivered_at", Timestamp),  # migration 0005: the retry window starts again here
)
sa.Index("webhook_outbox_job", webhook_outbox.c.job_id)
_undelivered = webhook_outbox.c.delivered_at.is_(None)
sa.Index(
    "webhook_outbox_due",
    webhook_outbox.c.next_attempt_at,
    postgresql_where=_undelivered,
    sqlite_where=_undelivered,
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("ref", sa.String(64), primary_key=True),
    sa.Column("chunk_no", sa.Integer, primary_key=True),
    sa.Column("data", Bytes, nullable=False),
)


# --- migration 0002: fleet-wide provider limits (ingestd.slots) and webhook endpoints/secrets ----------------
Seconds = sa.Float()  # limiter times are Unix seconds on both backends

provider_slots = sa.Table(
    "provider_slots",
    metadata,
    sa.Column("holder_id", sa.String(40), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("acquired_at", Seconds, nullable=False),
    sa.Column("lease_expires_at", Seconds, nullable=False),
)
sa.Index("provider_slots_provider", provider_slots.c.provider, provider_slots.c.tenant)

provider_waiters = sa.Table(
    "provider_waiters",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("arrived_at", Seconds, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    sa.Column("expires_at", Seconds, nullable=False),
)
sa.Index("provider_waiters_provider", provider_waiters.c.provider, provider_waiters.c.arrived_at)

provider_state = sa.Table(
    "provider_state",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("tokens", sa.Float),
    sa.Column("tokens_at", Seconds, nullable=False),
    sa.Column("concurrency", sa.Float),
    sa.Column("paused_until", Seconds, nullable=False),
    sa.Column("decreased_at", Seconds, nullable=False),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # migration 0005: the event types it gets, space-separated
    sa.Column(
        "event_types", sa.Text, nullable=False, server_default="job.succeeded job.partial job.failed job.canceled"
    ),
)
sa.Index("webhook_endpoints_tenant", webhook_endpoints.c.tenant)

webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # migration 0005: the secret before the last rotation, still signing (next to the new one) until then
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_expires_at", Timestamp),
)
