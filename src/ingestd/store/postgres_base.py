"""Plumbing shared by the PostgreSQL store's parts: the asyncpg pool, error translation, in-process sleepers.

Every query goes through ``_acquire`` (or the one-statement helpers), where driver errors become
``ingestd.errors``: a lost or refused connection is ``StoreUnavailable``, anything else the server rejects is
``StoreError``. Our own errors (``LeaseLost``, ``IdempotencyConflict``...) raised inside pass through unchanged.
The one-statement helpers retry through a server restart (up to ``RETRY_SECONDS``) when that is safe
(``retryable``), so a restart delays workers instead of failing their jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import asyncpg

from ingestd import errors
from ingestd.store.wakeup import Waiters

if TYPE_CHECKING:
    from ingestd.store.postgres_listen import Listener

# How long one statement keeps retrying through a lost connection or a restarting server before giving up.
RETRY_SECONDS = 15.0

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
# SQLSTATE classes of a statement the server refuses for what it says (the same statement fails again):
# data exception, integrity violation, syntax error or access rule violation, program limit exceeded.
# Everything else (serialization failures, deadlocks, a full disk, a read-only failover) is worth retrying.
_REFUSED_CLASSES = ("22", "23", "42", "54")
_FULL = "53100"  # disk_full


def translate(exc: BaseException) -> errors.StoreError:
    """A driver error as the ``ingestd.errors`` the rest of the code understands."""
    message = f"postgresql: {type(exc).__name__}: {exc}"
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    if isinstance(exc, _UNAVAILABLE) or sqlstate == _FULL:
        return errors.StoreUnavailable(message)
    if sqlstate[:2] in _REFUSED_CLASSES:
        return errors.StoreRejected(message, sqlstate=sqlstate)
    return errors.StoreError(message)


class PostgresBase:
    """The pool and the sleepers; the mixins (jobs, reads, limits, webhooks) build on these helpers."""

    url: str
    _pool: asyncpg.Pool | None
    _waiters: Waiters
    _listener: Listener

    def _wake(self, *, work: bool = False, jobs: Iterable[str] = (), slots: Iterable[str] = ()) -> None:
        """After a commit: wake sleepers here and in every other process (see ``postgres_listen``)."""
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

    async def _call(self, method: str, sql: str, args: tuple[Any, ...], idempotent: bool) -> Any:
        """Run one statement; ride out a lost connection or a restarting server (see ``retryable``)."""
        delay, deadline = 0.05, time.monotonic() + RETRY_SECONDS
        while True:
            try:
                async with self._acquire() as conn:
                    return await getattr(conn, method)(sql, *args)
            except errors.StoreUnavailable as exc:
                if not retryable(exc.__cause__, idempotent) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _fetch(self, sql: str, *args: Any, idempotent: bool = False) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._call("fetch", sql, args, idempotent)
        return rows

    async def _fetchrow(self, sql: str, *args: Any, idempotent: bool = False) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._call("fetchrow", sql, args, idempotent)
        return row

    async def _fetchval(self, sql: str, *args: Any, idempotent: bool = False) -> Any:
        return await self._call("fetchval", sql, args, idempotent)

    async def _execute(self, sql: str, *args: Any, idempotent: bool = False) -> str:
        status: str = await self._call("execute", sql, args, idempotent)
        return status


def retryable(cause: BaseException | None, idempotent: bool) -> bool:
    """Whether a statement that failed with the driver error ``cause`` may simply be run again.

    Always when it cannot have run: the connection could not be made, the server said it is shutting down or
    starting up (a terminated backend rolls its transaction back), or asyncpg found the connection closed or
    broken before sending. When the connection broke mid-statement it may have committed, so only a statement
    that is harmless to repeat (``idempotent``: reads, first-write-wins checkpoints, lease renewals) runs again.
    """
    if isinstance(cause, asyncpg.PostgresConnectionError | TimeoutError):
        return idempotent  # broke in the middle: it may have committed
    # InternalClientError: asyncpg refused to start the statement on a connection left in a broken state.
    return isinstance(
        cause,
        OSError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InternalClientError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.TooManyConnectionsError,
    )


async def no_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset hook: nothing to undo.

    The store never leaves session state behind (no LISTEN on pooled connections, only transaction-scoped advisory
    locks, no SET), so asyncpg's default reset query would be a wasted round trip on every release.
    """


__all__ = ["DRIVER_ERRORS", "RETRY_SECONDS", "PostgresBase", "no_reset", "retryable", "translate"]
