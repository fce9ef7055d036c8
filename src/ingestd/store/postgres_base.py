"""Plumbing shared by the PostgreSQL store's parts: the asyncpg pool, error translation, in-process sleepers.

Every query goes through ``_acquire`` (or the one-statement helpers), where driver errors become
``ingestd.errors``: a lost or refused connection is ``StoreUnavailable``, anything else the server rejects is
``StoreError``. Our own errors (``LeaseLost``, ``IdempotencyConflict``...) raised inside pass through unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import asyncpg

from ingestd import errors
from ingestd.store.wakeup import Waiters

if TYPE_CHECKING:
    from ingestd.store.pg_listen import Listener

# Connection-level trouble: the server restarted, refused us, or the socket broke. Callers may retry later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,  # the protocol state broke, e.g. the server cut us mid-query
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # no such role, or a wrong password
    asyncpg.exceptions.TooManyConnectionsError,
)
DRIVER_ERRORS: tuple[type[BaseException], ...] = (*_UNAVAILABLE, asyncpg.PostgresError)


def translate(exc: BaseException) -> errors.StoreError:
    """A driver error as the ``ingestd.errors`` the rest of the code understands."""
    if isinstance(exc, _UNAVAILABLE):
        return errors.StoreUnavailable(f"postgresql: {type(exc).__name__}: {exc}")
    return errors.StoreError(f"postgresql: {type(exc).__name__}: {exc}")


class PostgresBase:
    """The pool and the sleepers; the mixins (jobs, reads, limits, webhooks) build on these helpers."""

    url: str
    _pool: asyncpg.Pool | None
    _waiters: Waiters
    _listener: Listener

    def _wake(self, *, work: bool = False, jobs: Iterable[str] = (), slots: Iterable[str] = ()) -> None:
        """After a commit: wake sleepers here and in every other process (see ``pg_listen``)."""
        self._listener.send(work=work, jobs=jobs, slots=slots)

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; driver errors raised inside are translated."""
        pool = self._pool
        if pool is None:
            raise errors.StoreUnavailable("the store is closed")
        try:
            async with pool.acquire() as conn:
                try:
                    yield conn
                except _UNAVAILABLE:
                    conn.terminate()  # never hand a broken connection out again: the pool opens a new one
                    raise
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
            return row

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        async with self._acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._acquire() as conn:
            status: str = await conn.execute(sql, *args)
            return status


async def no_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset hook: nothing to undo.

    The store never leaves session state behind (no LISTEN on pooled connections, only transaction-scoped advisory
    locks, no SET), so asyncpg's default reset query would be a wasted round trip on every release.
    """


__all__ = ["DRIVER_ERRORS", "PostgresBase", "no_reset", "translate"]
