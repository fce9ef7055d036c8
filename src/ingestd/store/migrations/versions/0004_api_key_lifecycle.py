"""API keys with a lifecycle: a public id, a name, scopes, an expiry and a revocation time.

Keys made before this revision get the id ``key_`` + the first 16 hex digits of their hash and the scopes a
tenant's key had then (everything but ``admin``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ingestd.store.migrations.types import Timestamp

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("key_id", sa.String(40)))
    op.add_column("api_keys", sa.Column("name", sa.Text))
    op.add_column(
        "api_keys",
        sa.Column("scopes", sa.Text, nullable=False, server_default="jobs:write jobs:read memory:read"),
    )
    op.add_column("api_keys", sa.Column("expires_at", Timestamp))
    op.add_column("api_keys", sa.Column("revoked_at", Timestamp))
    op.execute("UPDATE api_keys SET key_id = 'key_' || substr(key_hash, 1, 16) WHERE key_id IS NULL")
    op.create_index("api_keys_key_id", "api_keys", ["key_id"], unique=True)
    op.create_index("api_keys_tenant", "api_keys", ["tenant"])


def downgrade() -> None:
    op.drop_index("api_keys_tenant", "api_keys")
    op.drop_index("api_keys_key_id", "api_keys")
    with op.batch_alter_table("api_keys") as batch:
        for column in ("revoked_at", "expires_at", "scopes", "name", "key_id"):
            batch.drop_column(column)
