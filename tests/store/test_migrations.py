"""The schema that the Alembic migrations make (``alembic upgrade head``: what ``store.migrate()`` and
``ingestd migrate`` run) on SQLite and on PostgreSQL is the one their revisions declare (``store/schema.py``
replays them onto a ``MetaData``): tables, columns, types, nullability, server defaults and indexes. A change made
behind Alembic's back (raw SQL DDL) or a dialect that makes something else fails here, naming the table and
column (docs/architecture.md, "Add a column"). The columns the typed rows select must exist too."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ingestd.store import migrations, records, schema, sqlite_path


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
        return f"{kind} {table}.{column}: the migrations make {migrated!r}, the revisions declare {declared!r}"
    return repr(diff)


async def _live_drift(database_url: str, declared: sa.MetaData | None = None) -> list[str]:
    declared = declared or schema.declared()
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
    assert drift == [], "alembic upgrade head and the revisions disagree:\n" + "\n".join(drift)


async def test_a_column_missing_from_the_migrations_is_named(database_url: str) -> None:
    """The check itself: a column declared but not in the database is reported by name."""
    declared = schema.declared()
    declared.tables["jobs"].append_column(sa.Column("drift_probe", sa.Text))
    assert await _live_drift(database_url, declared) == ["add_column jobs.drift_probe"]


def test_the_typed_rows_select_columns_the_migrations_make() -> None:
    tables = schema.declared().tables
    for row, table in [
        (records.JobRow, "jobs"),
        (records.StepRow, "steps"),
        (records.EventRow, "events"),
        (records.ApiKeyRow, "api_keys"),
        (records.WorkerRow, "workers"),
    ]:
        assert set(row._fields) <= set(tables[table].c.keys()), (
            row.__name__,
            set(row._fields) - set(tables[table].c.keys()),
        )


def test_the_head_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    assert migrations.head_revision() == scripts.get_current_head()


def test_a_store_at_head_opens_without_importing_alembic(database_url: str) -> None:
    """Every ingestd process opens a store: at head, it starts without Alembic and SQLAlchemy (about half of its
    import time)."""
    program = (
        "import asyncio, sys\n"
        "from ingestd.store import open_store\n"
        "async def main():\n"
        f"    await (await open_store({database_url!r})).close()\n"
        "asyncio.run(main())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'sqlalchemy'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
