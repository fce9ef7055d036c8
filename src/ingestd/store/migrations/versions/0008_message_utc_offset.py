"""Each chat message's UTC offset, so that its day is the day where it was said.

A message's time is stored in UTC (``at``); a chat sent at 21:30 ``-05:00`` on 20 June is 02:30 UTC on 21 June,
and was shown under 21 June. ``utc_offset`` keeps the minutes east of UTC the client sent (NULL for messages
stored before this revision, and for times sent without a zone: UTC), and messages are read back in it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.add_column("mem_messages", sa.Column("utc_offset", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("mem_messages") as batch:
        batch.drop_column("utc_offset")
