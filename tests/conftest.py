"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

Reuse these in any test directory:

- ``backend`` (parametrised ``"sqlite"``, ``"postgres"``): the backend's name.
- ``database_url``: a fresh, migrated, empty database URL for the backend: a SQLite file in ``tmp_path`` (copied
  from a file migrated once per process), or a
  PostgreSQL database ``ingestd_t_<rand>`` cloned from a template migrated once per session, dropped after the
  test. Use it for subprocesses (workers, servers) that open the store themselves.
- ``store``: an open ``JobStore`` on ``database_url`` (closed after the test).
- ``pg_url()``: the PostgreSQL server URL (``INGESTD_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/test``);
  ``new_pg_database()`` / ``drop_pg_database(url)``: make or drop a migrated database outside the fixtures.

Without a reachable PostgreSQL the ``postgres`` cases are skipped with a clear message, unless ``CI=true``, where
they fail: CI must run every test on both databases.

Tests marked ``slow`` (end-to-end runs of processes, tens of seconds each) run first, their modules whole: started
last, one of them would keep one xdist process busy after the other has finished the rest of the suite.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ingestd.store import open_store
from ingestd.store.protocol import JobStore

BACKENDS = ["sqlite", "postgres"]
_template_ready = False
_sqlite_template: str | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that hold a ``slow`` test first, each module's tests in their own order (so that module-scoped
    fixtures are set up once per process)."""
    slow_modules = {item.module for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.module not in slow_modules)


def pg_url(database: str | None = None) -> str:
    """The test PostgreSQL URL, or the same server with another ``database``."""
    url = os.environ.get("INGESTD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if database is None:
        return url
    return url.rsplit("/", 1)[0] + "/" + database


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL is not reachable at {pg_url()} ({reason}); set INGESTD_TEST_PG or start it"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(pg_url(), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unavailable(str(exc))
        raise  # unreachable: _unavailable raises


def _template_name() -> str:
    """The template database for the current migrations: named by a hash of their files, so concurrent test
    sessions (helpers, xdist) share it instead of dropping it under each other, and a changed migration gets a
    new one."""
    import hashlib
    from pathlib import Path

    from ingestd.store import migrations

    digest = hashlib.sha1()
    for path in sorted(Path(migrations.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return f"ingestd_tpl_{digest.hexdigest()[:12]}"


async def _ensure_template() -> None:
    """Build the migrated template database once (per migration contents), under an advisory lock."""
    global _template_ready
    if _template_ready:
        return
    from ingestd.store import migrations

    admin = await _admin()
    try:
        await admin.execute("SELECT pg_advisory_lock(7320001)")
        try:
            name = _template_name()
            exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await admin.execute(f"DROP DATABASE IF EXISTS {name}_build WITH (FORCE)")  # a crashed build
                await admin.execute(f"CREATE DATABASE {name}_build")
                await migrations.upgrade_postgres(pg_url(f"{name}_build"))
                await admin.execute(f"ALTER DATABASE {name}_build RENAME TO {name}")
        finally:
            await admin.execute("SELECT pg_advisory_unlock(7320001)")
    finally:
        await admin.close()
    _template_ready = True


async def new_pg_database() -> str:
    """A fresh migrated PostgreSQL database (cloned from the template); returns its URL."""
    await _ensure_template()
    name = f"ingestd_t_{os.urandom(5).hex()}"
    admin = await _admin()
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {_template_name()}")
    finally:
        await admin.close()
    return pg_url(name)


async def drop_pg_database(url: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


def _copy_sqlite_template(path: str) -> None:
    """A migrated SQLite file at ``path``: a copy of one migrated once per test process (the migrations themselves are
    tested in ``tests/store/test_migrations.py``; running them for each of several hundred tests cost minutes)."""
    global _sqlite_template
    if _sqlite_template is None:
        from ingestd.store.migrations import upgrade_sqlite

        template = os.path.join(tempfile.mkdtemp(prefix="ingestd_tpl_"), "template.db")
        upgrade_sqlite(template)
        _sqlite_template = template
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(_sqlite_template)) as source,
        contextlib.closing(sqlite3.connect(path)) as copy,
    ):
        source.backup(copy)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; every test using it (or ``database_url`` / ``store``) runs on both."""
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: object) -> AsyncIterator[str]:
    """A fresh, migrated, empty database of ``backend`` (see the module docstring)."""
    if backend == "sqlite":
        path = os.path.join(str(tmp_path), "db", "ingestd.db")
        _copy_sqlite_template(path)
        yield f"sqlite:///{path}"
        return
    url = await new_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[JobStore]:
    """An open ``JobStore`` on a fresh database of each backend."""
    opened = await open_store(database_url, migrate=False)
    try:
        yield opened
    finally:
        await opened.close()


__all__ = ["drop_pg_database", "new_pg_database", "pg_url"]
