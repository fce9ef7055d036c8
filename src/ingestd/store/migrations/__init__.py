"""Schema migrations (Alembic), run programmatically: ``store.migrate()`` calls one of these functions.

Both are safe when several processes start at once: PostgreSQL serialises them with an advisory lock taken in
the migration's own transaction, SQLite with an exclusive lock on ``<database>.migrate.lock``. The loser of the
race waits, then finds the schema already at head and does nothing.

Alembic and SQLAlchemy are imported only when a database is behind (``head_revision`` reads the revision files as
text): every ``ingestd`` process opens a store, and most find it at head, so they start without those imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

_HERE = Path(__file__).resolve().parent
_PG_LOCK_KEY = 0x1A6E57D  # an arbitrary constant shared by every ingestd process
_REVISION = re.compile(r'^(down_revision|revision) = (?:"(\w+)"|None)$', re.MULTILINE)
VERSION_SQL = "SELECT version_num FROM alembic_version"  # the revision a database is at (one row)


@functools.cache
def head_revision() -> str:
    """The newest revision in ``versions/`` (the one no other revision follows), read from the files' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_HERE / "versions").glob("[0-9]*.py"):
        found = dict((name, value) for name, value in _REVISION.findall(path.read_text()))
        revisions.add(found["revision"])
        parents.add(found.get("down_revision", ""))
    (head,) = revisions - parents
    return head


def alembic_config() -> Config:
    """An Alembic Config pointing at this package (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    return config


def _upgrade_on(connection: sa.Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def sqlite_at_head(path: str) -> bool:
    """Whether the SQLite file at ``path`` exists and is at ``head_revision`` (blocking)."""
    import sqlite3

    if not os.path.exists(path):
        return False
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(VERSION_SQL).fetchone()
    except sqlite3.OperationalError:  # no alembic_version yet
        return False
    return row is not None and row["version_num"] == head_revision()


def _one_transaction(engine: sa.Engine) -> None:
    """Run the whole upgrade in one SQLite transaction, in WAL mode as the store opens it (SQLAlchemy's recipe for
    pysqlite, which otherwise commits before every DDL statement): a crash leaves the file at its old revision, not
    half-migrated, and a new file is made with one sync instead of one a statement (71: 1.2-2.2 s -> see
    ``tests/store/test_migrations.py``)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite leaves the transactions to us
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_sqlite(path: str) -> None:
    """Migrate the SQLite file at ``path`` to head (blocking: run it in a thread); nothing if it is there."""
    if sqlite_at_head(path):
        return
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    with open(f"{path}.migrate.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        engine = sa.create_engine(f"sqlite:///{os.path.abspath(path)}", poolclass=NullPool)
        _one_transaction(engine)
        try:
            with engine.begin() as connection:
                _upgrade_on(connection)
        finally:
            engine.dispose()


def sqlalchemy_pg_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` as SQLAlchemy's asyncpg URL."""
    rest = url.split("://", 1)[1]
    return f"postgresql+asyncpg://{rest}"


async def postgres_at_head(url: str) -> bool:
    """Whether the PostgreSQL database at ``url`` is at ``head_revision``."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval(VERSION_SQL) == head_revision())
    except asyncpg.UndefinedTableError:  # no alembic_version yet
        return False
    finally:
        await conn.close()


async def upgrade_postgres(url: str) -> None:
    """Migrate the PostgreSQL database at ``url`` to head; nothing if it is there."""
    if await postgres_at_head(url):
        return
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(sqlalchemy_pg_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"))
            await connection.run_sync(_upgrade_on)
    finally:
        await engine.dispose()
