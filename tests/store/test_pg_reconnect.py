"""PostgreSQL only: the store survives its connections being cut (what a server restart does to it).

Every backend connection to the test database is terminated with ``pg_terminate_backend``; the store must answer
again within seconds (pooled connections are replaced) and its listener must reconnect, so cross-process wake-ups
work again without waiting for the fallback poll.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from ingestd import errors
from ingestd.models import Job, JobStatus, NewJob
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings
from ingestd.store import open_store
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

pytestmark = pytest.mark.timeout(60)


async def _cut_connections(url: str) -> int:
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await admin.close()


async def _eventually(store: JobStore, seconds: float = 10.0) -> str:
    """Submit until the store answers again (the first calls may meet a dead connection: StoreUnavailable)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return (await store.submit(NewJob("demo", {}))).job.id
        except errors.StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_store_and_listener_come_back_after_connections_are_cut(
    slow_fallback: float, backend: str, store: JobStore
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL connections only")
    other = await open_store(store.url, migrate=False)
    try:
        job_id = (await store.submit(NewJob("demo", {}))).job.id
        assert await _cut_connections(store.url) >= 2  # pools and listeners of both stores
        await _eventually(store)
        await _eventually(other)
        await asyncio.sleep(0.5)  # the listeners reconnect with backoff in well under this
        waiter = asyncio.create_task(other.wait_for_events(job_id, 1, 60.0))
        await asyncio.sleep(0.05)
        await store.append_events(job_id, [("job.progress", {"after": "restart"})])
        assert await asyncio.wait_for(waiter, 5.0)  # a NOTIFY, not the (slowed) fallback poll
    finally:
        await other.close()


async def test_unreachable_server_or_database_is_store_unavailable(backend: str, database_url: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL connections only")
    base = database_url.rsplit("/", 1)[0]
    with pytest.raises(errors.StoreUnavailable):
        await open_store("postgresql://postgres@127.0.0.1:1/ingestd", migrate=False)  # nothing listens there
    with pytest.raises(errors.StoreUnavailable):
        await open_store(base + "/ingestd_no_such_database")


async def test_a_worker_rides_out_cut_connections_without_failing_jobs(backend: str, store: JobStore) -> None:
    """Connections cut while a worker runs map steps: every job still succeeds (statements that cannot have run,
    or are safe to repeat, are retried) and none is left queued or running."""
    if backend != "postgres":
        pytest.skip("PostgreSQL connections only")
    settings = Settings(database_url=store.url, lease_seconds=3.0, heartbeat_seconds=0.5, poll_seconds=0.5)
    ids = [(await store.submit(NewJob("demo", {"items": 3, "seconds": 0.01}))).job.id for _ in range(80)]
    worker = Worker(store, build_pipelines(settings), settings)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(4):
            await asyncio.sleep(0.3)
            await _cut_connections(store.url)
        deadline = time.monotonic() + 40
        while any(j is None or not j.status.terminal for j in [await _get(store, i) for i in ids]):
            assert time.monotonic() < deadline, "jobs still unfinished"
            await asyncio.sleep(0.3)
    finally:
        await worker.stop(grace=1)
        await running
    assert {j.status if j else None for j in [await _get(store, i) for i in ids]} == {JobStatus.SUCCEEDED}


async def _get(store: JobStore, job_id: str) -> Job | None:
    for _ in range(100):
        try:
            return await store.get_job(job_id)
        except errors.StoreUnavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("the store never came back")
