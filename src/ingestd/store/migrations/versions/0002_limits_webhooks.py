"""Provider limits (slots, waiters, state) and webhooks (endpoints, secrets, outbox leases).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingestd.store.migrations.types import Seconds, Timestamp

revision = "0002"
down_revision = "0001"


def _limits() -> None:
    op.create_table(
        "provider_slots",
        sa.Column("holder_id", sa.String(40), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("acquired_at", Seconds, nullable=False),
        sa.Column("lease_expires_at", Seconds, nullable=False),
    )
    op.create_index("provider_slots_provider", "provider_slots", ["provider", "tenant"])
    op.create_table(
        "provider_waiters",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("arrived_at", Seconds, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("expires_at", Seconds, nullable=False),
    )
    op.create_index("provider_waiters_provider", "provider_waiters", ["provider", "arrived_at"])
    op.create_table(
        "provider_state",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float),
        sa.Column("tokens_at", Seconds, nullable=False),
        sa.Column("concurrency", sa.Float),
        sa.Column("paused_until", Seconds, nullable=False),
        sa.Column("decreased_at", Seconds, nullable=False),
    )


def _webhooks() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("webhook_endpoints_tenant", "webhook_endpoints", ["tenant"])
    op.create_table(
        "webhook_secrets",
        sa.Column("tenant", sa.Text, primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.add_column("webhook_outbox", sa.Column("lease_owner", sa.Text))
    op.add_column("webhook_outbox", sa.Column("lease_expires_at", Timestamp))
    op.add_column("webhook_outbox", sa.Column("failed_at", Timestamp))
    op.create_index("webhook_outbox_job", "webhook_outbox", ["job_id"])


def upgrade() -> None:
    _limits()
    _webhooks()


def downgrade() -> None:
    op.drop_index("webhook_outbox_job", "webhook_outbox")
    with op.batch_alter_table("webhook_outbox") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
    for table in ("webhook_secrets", "webhook_endpoints", "provider_state", "provider_waiters", "provider_slots"):
        op.drop_table(table)
