"""The schema that the Alembic migrations make (``alembic upgrade head``: what ``store.migrate()`` and
``ingestd migrate`` run) is the one ``store/schema.py`` declares: tables, columns, types, nullability, server
defaults and indexes, on SQLite and on PostgreSQL. Adding a column to one and not the other fails here, naming
it (docs/architecture.md, "Add a column")."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ingestd.store import migrations, sqlite_path
from ingestd.store.schema import metadata


def _drift(connection: sa.Connection, declared: sa.MetaData) -> list[str]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return [_describe(diff) for diff in compare_metadata(context, declared)]


def _describe(diff: Any) -> str:
    """One difference, as what the migrations made versus what ``schema.py`` declares."""
    if isinstance(diff, list):  # alembic groups the modifications of one column
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    if kind in ("add_table", "remove_table"):
        return f"{kind} {rest[0].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {rest[1]}.{rest[2].name}"
    if kind in ("add_index", "remove_index"):
        return f"{kind} {rest[0].name} on {rest[0].table.name}"
    if kind.startswith("modify_"):
        _, table, column, _, migrated, declared = rest
        return f"{kind} {table}.{column}: the migrations make {migrated!r}, schema.py declares {declared!r}"
    return repr(diff)


async def _live_drift(database_url: str, declared: sa.MetaData = metadata) -> list[str]:
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(f"sqlite:///{sqlite_path(database_url)}", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return _drift(connection, declared)
        finally:
            engine.dispose()
    async_engine = create_async_engine(migrations.sqlalchemy_pg_url(database_url), poolclass=NullPool)
    try:
        async with async_engine.connect() as connection:
            return await connection.run_sync(_drift, declared)
    finally:
        await async_engine.dispose()


async def test_the_migrations_make_the_declared_schema(database_url: str) -> None:
    drift = await _live_drift(database_url)
    assert drift == [], "alembic upgrade head and store/schema.py disagree:\n" + "\n".join(drift)


async def test_a_column_missing_from_the_migrations_is_named(database_url: str) -> None:
    """The check itself: a column declared in ``schema.py`` but made by no migration is reported by name."""
    declared = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(declared)
    declared.tables["jobs"].append_column(sa.Column("drift_probe", sa.Text))
    assert await _live_drift(database_url, declared) == ["add_column jobs.drift_probe"]
