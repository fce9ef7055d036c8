"""The PostgreSQL ``JobStore`` (also ``LimiterStore`` and ``WebhookStore``): for fleets of workers on many machines.

- An asyncpg pool serves the queries; most protocol methods are one statement (``postgres_sql``), claims use
  ``FOR UPDATE SKIP LOCKED`` so competing workers pass over each other's rows, and times come from the server's
  ``now()`` so leases mean the same on every machine.
- Wake-ups: triggers (migration 0001) ``NOTIFY ingestd_events`` with the job id of every new event and
  ``ingestd_work`` when a job may have become claimable; released provider slots notify ``ingestd_slots``. One
  dedicated connection per store LISTENs and wakes this process's sleepers (``Waiters``). When that connection
  drops (a server restart) it reconnects with backoff and wakes everyone to re-check; until then sleepers poll
  every second.
- Input files live in the database (``pg_blobs``), so any worker can read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg

from ingestd.store import migrations
from ingestd.store.pg_blobs import PostgresBlobStore
from ingestd.store.postgres_base import DRIVER_ERRORS, no_reset, translate
from ingestd.store.postgres_jobs import PostgresJobs
from ingestd.store.postgres_limits import PostgresLimits
from ingestd.store.postgres_reads import PostgresReads
from ingestd.store.postgres_webhooks import PostgresWebhooks
from ingestd.store.protocol import BlobStore
from ingestd.store.wakeup import Waiters, Wake

_FALLBACK_POLL_SECONDS = 1.0
_RECONNECT_MAX_SECONDS = 2.0
_LIVENESS_SECONDS = 5.0  # how often the listener checks that its connection is still open


class _Listener:
    """LISTEN on one dedicated connection; notifications wake ``waiters``. Reconnects after a disconnect."""

    CHANNELS = ("ingestd_events", "ingestd_work", "ingestd_slots")

    def __init__(self, url: str, waiters: Waiters) -> None:
        self.url = url
        self.waiters = waiters
        self.connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Start listening; returns once the first LISTEN is in place (or raises StoreUnavailable)."""
        try:
            await self._connect()
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        self._task = asyncio.create_task(self._supervise(), name="ingestd-pg-listen")

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self.url, timeout=10)
        conn.add_termination_listener(lambda _: self._lost.set())
        try:
            for channel in self.CHANNELS:
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.connected.set()

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        text = str(payload)
        if channel == "ingestd_events":
            self.waiters.notify(Wake(jobs=[text]))
        elif channel == "ingestd_work":
            self.waiters.notify(Wake(work=True))
        else:
            self.waiters.notify(Wake(jobs=[f"slots:{text}"]))

    async def _supervise(self) -> None:
        delay = 0.05
        while True:
            await self._watch()
            self.connected.clear()
            self._conn = None
            try:
                await self._connect()
            except DRIVER_ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)
                continue
            delay = 0.05
            self.waiters.notify_everyone()  # anything may have happened while we were deaf

    async def _watch(self) -> None:
        """Return once the connection is gone: closed by the server, or not answering a ping."""
        while (conn := self._conn) is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(self._lost.wait(), _LIVENESS_SECONDS)
                break
            except TimeoutError:
                pass
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), _LIVENESS_SECONDS)
            except DRIVER_ERRORS:
                conn.terminate()
                break

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            with contextlib.suppress(*DRIVER_ERRORS):
                await asyncio.wait_for(self._conn.close(), 5)
            self._conn = None


class PostgresJobStore(PostgresJobs, PostgresReads, PostgresLimits, PostgresWebhooks):
    """A ``JobStore`` on PostgreSQL. Create with ``await PostgresJobStore.open(url)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._waiters = Waiters()
        self._listener = _Listener(url, self._waiters)
        self.blobs: BlobStore = PostgresBlobStore(self._acquire)

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, min_size: int = 2, max_size: int = 10, **_: Any
    ) -> PostgresJobStore:
        """Open a pool on ``url`` (and by default migrate the schema to head)."""
        store = cls(url)
        if migrate:
            await store.migrate()
        try:
            store._pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, reset=no_reset)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        try:
            await store._listener.start()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self._listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(*DRIVER_ERRORS):
                await asyncio.wait_for(pool.close(), 10)

    async def migrate(self) -> None:
        """Alembic to head under an advisory lock (safe when several processes start at once)."""
        try:
            await migrations.upgrade_postgres(self.url)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    # --- waiting ---------------------------------------------------------------------------------
    def _poll_interval(self, remaining: float) -> float:
        return remaining if self._listener.connected.is_set() else min(remaining, _FALLBACK_POLL_SECONDS)

    async def wait_for_events(self, job_id: str, after: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._waiters.events_sleeper(job_id) as woken:
                if await self._last_seq(job_id) > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # A NOTIFY can only be missed while the listener reconnects; re-check each second regardless.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken, min(remaining, _FALLBACK_POLL_SECONDS))

    async def wait_for_work(self, timeout: float) -> None:
        await self._waiters.sleep_for_work(self._poll_interval(timeout))

    async def wait_for_provider_slots(self, provider: str, timeout: float) -> None:
        with self._waiters.events_sleeper(f"slots:{provider}") as woken:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken, self._poll_interval(timeout))


__all__ = ["PostgresJobStore"]
