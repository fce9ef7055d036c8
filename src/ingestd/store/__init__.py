"""The durable job store: ``open_store(url)`` picks the backend from the database URL.

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``: SQLite (the folder is created);
- ``postgresql://user@host:port/db`` or ``postgres://...``: PostgreSQL.

Options: ``blob_dir`` (SQLite: where input files live, default ``<db>.blobs/``), ``migrate`` (default True: bring
the schema to head on open), and for PostgreSQL ``min_size`` / ``max_size`` of the connection pool.
"""

from __future__ import annotations

from typing import Any

from ingestd.store.protocol import BlobStore, JobStore


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (three slashes: relative; four: absolute)."""
    path = url.removeprefix("sqlite://")
    if not path.startswith("/") or path == "/":
        raise ValueError(f"not a sqlite URL: {url!r} (use sqlite:///relative.db or sqlite:////abs.db)")
    return path[1:]


async def open_store(url: str, **options: Any) -> JobStore:
    """Open the store at ``url``, migrating it to the newest schema unless ``migrate=False``."""
    if url.startswith("sqlite://"):
        from ingestd.store.sqlite import SQLiteJobStore

        return await SQLiteJobStore.open(url, sqlite_path(url), **options)
    if url.startswith(("postgresql://", "postgres://")):
        from ingestd.store.postgres import PostgresJobStore

        return await PostgresJobStore.open(url, **options)
    raise ValueError(f"unsupported database URL: {url!r} (sqlite:///... or postgresql://...)")


__all__ = ["BlobStore", "JobStore", "open_store", "sqlite_path"]
