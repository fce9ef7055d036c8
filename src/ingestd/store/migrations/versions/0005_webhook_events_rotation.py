"""Webhooks as receivers expect: event types per endpoint, a rotated secret's overlap, redelivery.

Endpoints made before this revision keep getting what they got (every finished job): the four terminal event
types. A rotated secret keeps signing (next to the new one) until ``previous_expires_at``. A redelivered message's
retry window starts again at ``redelivered_at``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingestd.store.migrations.types import Timestamp

revision = "0005"
down_revision = "0004"

TERMINAL_EVENTS = "job.succeeded job.partial job.failed job.canceled"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints", sa.Column("event_types", sa.Text, nullable=False, server_default=TERMINAL_EVENTS)
    )
    op.add_column("webhook_secrets", sa.Column("previous_secret", sa.Text))
    op.add_column("webhook_secrets", sa.Column("previous_expires_at", Timestamp))
    op.add_column("webhook_outbox", sa.Column("redelivered_at", Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox") as batch:
        batch.drop_column("redelivered_at")
    with op.batch_alter_table("webhook_secrets") as batch:
        batch.drop_column("previous_expires_at")
        batch.drop_column("previous_secret")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("event_types")
