"""The PostgreSQL ``JobStore`` (also ``LimiterStore`` and ``WebhookStore``): for fleets of workers on many machines.

- An asyncpg pool serves the queries; most protocol methods are one statement (``postgres_sql``), claims use
  ``FOR UPDATE SKIP LOCKED`` so competing workers pass over each other's rows, and times come from the server's
  ``now()`` so leases mean the same on every machine.
- Wake-ups (``postgres_listen``): after each commit that matters the store wakes this process's sleepers
  (``Waiters``) and NOTIFYs the others (``ingestd_events`` with job ids, ``ingestd_work``, ``ingestd_slots``) from
  one dedicated connection that also LISTENs. It reconnects after a server restart and wakes everyone to
  re-check; sleepers also re-check every second, the fallback.
- Durability: every write waits for its WAL flush (``synchronous_commit`` as configured) except claims and
  lease renewals, which losing in a server crash cannot harm (see ``postgres_sql.NO_FSYNC``).
- The pool (``min_size`` 1, ``max_size`` 10 by default) skips asyncpg's reset query on release: the store leaves
  no session state behind, and the reset would double the round trips of every call.
- Input files live in the database (``postgres_blobs``), so any worker can read them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from ingestd.batching import Batcher
from ingestd.store import migrations
from ingestd.store.postgres_base import DRIVER_ERRORS, no_reset, translate
from ingestd.store.postgres_blobs import PostgresBlobStore
from ingestd.store.postgres_jobs import PostgresJobs
from ingestd.store.postgres_keys import PostgresKeys
from ingestd.store.postgres_limits import PostgresLimits
from ingestd.store.postgres_listen import Listener
from ingestd.store.postgres_reads import PostgresReads
from ingestd.store.postgres_replay import PostgresReplay
from ingestd.store.postgres_retry import PostgresRetry
from ingestd.store.postgres_webhooks import PostgresWebhooks
from ingestd.store.protocol import BlobStore
from ingestd.store.shared import SharedMethods
from ingestd.store.wakeup import Waiters

_FALLBACK_POLL_SECONDS = 1.0


class PostgresJobStore(
    PostgresJobs,
    PostgresReads,
    PostgresKeys,
    PostgresRetry,
    PostgresReplay,
    PostgresLimits,
    PostgresWebhooks,
    SharedMethods,
):
    """A ``JobStore`` on PostgreSQL. Create with ``await PostgresJobStore.open(url)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._waiters = Waiters()
        self._listener = Listener(url, self._waiters)
        self.blobs: BlobStore = PostgresBlobStore(self._acquire)
        self._finishes = Batcher(self._finish_batch, "ingestd-pg-finish")

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, min_size: int = 1, max_size: int = 10, **_: Any
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
        except Exception as exc:
            import sqlalchemy.exc  # imported by then: only a migration that ran can raise it

            if not isinstance(exc, sqlalchemy.exc.DBAPIError):
                raise
            # Alembic runs on SQLAlchemy, which wraps the driver's errors
            cause = exc.orig.__cause__ if exc.orig is not None else None
            raise translate(cause if isinstance(cause, DRIVER_ERRORS) else exc) from exc

    # --- waiting ---------------------------------------------------------------------------------
    def _poll_interval(self, remaining: float) -> float:
        return remaining if self._listener.connected.is_set() else min(remaining, _FALLBACK_POLL_SECONDS)

    async def wait_for_events(self, job_id: str, after: int, timeout: float) -> bool:
        # A NOTIFY can only be missed while the listener reconnects; re-check each second regardless.
        return await self._waiters.wait_for_events(job_id, after, timeout, self._last_seq, _FALLBACK_POLL_SECONDS)

    async def wait_for_work(self, timeout: float) -> None:
        await self._waiters.sleep_for_work(self._poll_interval(timeout))

    async def wait_for_provider_slots(self, provider: str, timeout: float) -> None:
        with self._waiters.events_sleeper(f"slots:{provider}") as woken:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken, self._poll_interval(timeout))


__all__ = ["PostgresJobStore"]
