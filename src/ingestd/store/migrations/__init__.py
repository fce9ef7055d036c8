"""Schema migrations (Alembic), run programmatically: ``store.migrate()`` calls one of these functions.

Both are safe when several processes start at once: PostgreSQL serialises them with an advisory lock taken in
the migration's own transaction, SQLite with an exclusive lock on ``<database>.migrate.lock``. The loser of the
race waits, then finds the schema already at head and does nothing.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

_HERE = Path(__file__).resolve().parent
_PG_LOCK_KEY = 0x1A6E57D  # an arbitrary constant shared by every ingestd process


def alembic_config() -> Config:
    """An Alembic Config pointing at this package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    return config


def _upgrade_on(connection: sa.Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_sqlite(path: str) -> None:
    """Migrate the SQLite file at ``path`` to head (blocking: run it in a thread)."""
    with open(f"{path}.migrate.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        engine = sa.create_engine(f"sqlite:///{os.path.abspath(path)}", poolclass=NullPool)
        try:
            with engine.begin() as connection:
                _upgrade_on(connection)
        finally:
            engine.dispose()


def sqlalchemy_pg_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` as SQLAlchemy's asyncpg URL."""
    rest = url.split("://", 1)[1]
    return f"postgresql+asyncpg://{rest}"


async def upgrade_postgres(url: str) -> None:
    """Migrate the PostgreSQL database at ``url`` to head."""
    engine = create_async_engine(sqlalchemy_pg_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"))
            await connection.run_sync(_upgrade_on)
    finally:
        await engine.dispose()
