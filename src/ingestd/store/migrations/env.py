"""Alembic environment for ingestd. Run programmatically by ``ingestd.store.migrations.upgrade_sqlite`` /
``upgrade_postgres`` (what ``store.migrate()`` calls): the caller passes an open SQLAlchemy connection in
``config.attributes["connection"]`` (and holds the cross-process lock)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("run migrations with store.migrate() (or `ingestd migrate`), not the alembic command")

context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
