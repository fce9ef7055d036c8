"""Initial schema: jobs, steps, events, workers, api_keys, webhook_outbox, blobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingestd.store.migrations.types import Bytes, Timestamp, where

revision = "0001"
down_revision = None


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("progress_stage", sa.Text),
        sa.Column("progress_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
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
        sa.Column("usage", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.Text),
        sa.Column("units", sa.Float, nullable=False, server_default="0"),
        sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("jobs_queued", "jobs", [sa.text("priority DESC"), "run_at", "id"], **where("status = 'queued'"))
    op.create_index("jobs_leases", "jobs", ["lease_expires_at"], **where("status = 'running'"))
    op.create_index("jobs_ordering", "jobs", ["ordering_key", "status", "id"], **where("ordering_key IS NOT NULL"))
    op.create_index("jobs_idempotency", "jobs", ["tenant", "idempotency_key"], unique=True)
    op.create_index("jobs_tenant", "jobs", ["tenant", "id"])
    op.create_index("jobs_tenant_queued", "jobs", ["tenant"], **where("status = 'queued'"))
    op.create_index("jobs_expiry", "jobs", ["expires_at"], **where("expires_at IS NOT NULL"))
    op.create_index("jobs_durations", "jobs", ["pipeline", "finished_at"], **where("status = 'succeeded'"))


def _others() -> None:
    op.create_table(
        "steps",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=False),
        sa.Column("usage", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.Column("jobs", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", Timestamp),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("webhook_outbox_due", "webhook_outbox", ["next_attempt_at"], **where("delivered_at IS NULL"))
    op.create_table(
        "blobs",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("chunk_no", sa.Integer, primary_key=True),
        sa.Column("data", Bytes, nullable=False),
    )


# PostgreSQL wakes sleepers with NOTIFY from triggers, so no statement can forget to: every new event wakes its
# job's followers; a job becoming queued (submit, release, retry) or a keyed job ending wakes workers.
_PG_NOTIFY = [
    "CREATE FUNCTION ingestd_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('ingestd_events', NEW.job_id); RETURN NULL; END $$",
    "CREATE FUNCTION ingestd_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_notify('ingestd_work', ''); RETURN NULL; END $$",
    "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION ingestd_notify_event()",
    "CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION ingestd_notify_work()",
    "CREATE TRIGGER jobs_notify_update AFTER UPDATE OF status ON jobs FOR EACH ROW "
    "WHEN (NEW.status = 'queued' OR (NEW.ordering_key IS NOT NULL AND OLD.status <> NEW.status "
    "AND NEW.status IN ('succeeded', 'partial', 'failed', 'canceled'))) EXECUTE FUNCTION ingestd_notify_work()",
]


def upgrade() -> None:
    _jobs()
    _others()
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_NOTIFY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ingestd_notify_event, ingestd_notify_work CASCADE")
    for table in ("blobs", "webhook_outbox", "api_keys", "workers", "events", "steps", "jobs"):
        op.drop_table(table)
