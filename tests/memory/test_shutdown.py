"""At shutdown, ``ingestd worker`` and the app close the memory graph the pipeline opened (one per process: a
PostgreSQL pool, SQLite connections) along with the job store: no connection to the database is left, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import httpx
from memory_support import BUILT, fast_settings
from workers import wait_until

from ingestd.api.app import create_app
from ingestd.cli import run_worker
from ingestd.store import sqlite_path


async def connections(url: str) -> int:
    """Connections this process holds to the database: open files of the SQLite database (and its WAL), or
    PostgreSQL sessions on this test's own database."""
    if url.startswith("sqlite"):
        path = os.path.realpath(sqlite_path(url))
        fds = os.listdir("/proc/self/fd")
        links = [os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")]
        return sum(1 for link in links if link in (path, f"{path}-wal"))
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


async def test_the_worker_closes_the_memory_graph_at_sigterm(database_url: str) -> None:
    settings = fast_settings(database_url, pipeline_modules=["memory_support:recorded_memory"])
    BUILT.clear()
    task = asyncio.create_task(run_worker(settings, "shutdown-w"))

    async def built() -> bool:
        assert not task.done(), task
        return bool(BUILT)

    await wait_until(built, timeout=10, what="the worker's pipelines")
    await BUILT[0].run.__self__.graph()  # type: ignore[attr-defined]  # what its first memory job opens
    assert await connections(database_url) >= 2  # the job store's and the graph's
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the worker's handler, not the default: exit
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, timeout=10)
    assert await connections(database_url) == 0


async def test_the_app_closes_the_memory_graph_it_read_through(database_url: str) -> None:
    app = create_app(fast_settings(database_url, webhook_dispatch=False))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingestd.test") as client:
            answer = await client.get("/v1/memory/nobody/search", params={"q": "where"})  # opens the graph
        assert answer.status_code == 404, answer.text
        assert await connections(database_url) >= 2
    assert await connections(database_url) == 0
