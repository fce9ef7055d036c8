"""PostgreSQL: wake-ups are sent by the store after commit, not by NOTIFY triggers inside the transaction.

A transaction that NOTIFYs takes a database-wide lock at commit and holds it through its WAL flush, so every job
write waited for every other one's fsync: no group commit, about 200 jobs/s whatever the worker concurrency. The
store (``postgres.py``) now sends the same notifications from its listening connection right after its own
commits, in a transaction that writes no WAL. SQLite is unaffected.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"

_TRIGGERS = ("events_notify ON events", "jobs_notify_insert ON jobs", "jobs_notify_update ON jobs")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION ingestd_notify_event()"
        )
        op.execute(
            "CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION ingestd_notify_work()"
        )
        op.execute(
            "CREATE TRIGGER jobs_notify_update AFTER UPDATE OF status ON jobs FOR EACH ROW "
            "WHEN (NEW.status = 'queued' OR (NEW.ordering_key IS NOT NULL AND OLD.status <> NEW.status "
            "AND NEW.status IN ('succeeded', 'partial', 'failed', 'canceled'))) EXECUTE FUNCTION ingestd_notify_work()"
        )
