"""The SQLite store's ``LimiterStore``: provider slots, waiters and state in the shared database file.

Every method is one ``BEGIN IMMEDIATE`` transaction in the store's database thread, so the processes sharing the
file serialise on SQLite's write lock: that is the per-provider lock ``ingestd.slots`` needs. A released slot
wakes waiting processes through the store's wake-ups, as if it were the events of a pseudo-job
``slots:<provider>`` (the datagram socket across processes, ``PRAGMA data_version`` as the fallback).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ingestd.models import JSON
from ingestd.slots import WAITER_TTL_SECONDS, Feedback, Plan, ProviderState, SlotLimit, Waiter
from ingestd.store import limiter_shared
from ingestd.store.wakeup import Waiters, Wake

T = TypeVar("T")
_STATE = f"SELECT {limiter_shared.STATE_COLUMNS} FROM provider_state WHERE provider = ?"
_SAVE_STATE = limiter_shared.save_state_sql("?, ?, ?, ?, ?, ?")


def wake_key(provider: str) -> str:
    """The pseudo-job id whose "events" are this provider's released slots."""
    return f"slots:{provider}"


def _state(conn: sqlite3.Connection, provider: str) -> ProviderState:
    return limiter_shared.state_from_row(conn.execute(_STATE, (provider,)).fetchone())


def _save_state(conn: sqlite3.Connection, provider: str, s: ProviderState) -> None:
    conn.execute(_SAVE_STATE, limiter_shared.state_params(provider, s))


def _expire_and_register(
    conn: sqlite3.Connection, provider: str, waiters: Sequence[Waiter], gone: Sequence[str], now: float
) -> bool:
    """Drop expired slots/waiters and ``gone``; upsert ``waiters``. True if a place in the queue opened up."""
    freed = conn.execute(
        "DELETE FROM provider_slots WHERE provider = ? AND lease_expires_at < ?", (provider, now)
    ).rowcount
    freed += conn.execute(
        "DELETE FROM provider_waiters WHERE provider = ? AND expires_at < ?", (provider, now)
    ).rowcount
    if gone:
        conn.executemany("DELETE FROM provider_waiters WHERE id = ?", [(g,) for g in gone])
        freed += len(gone)
    conn.executemany(
        "INSERT INTO provider_waiters (id, provider, tenant, arrived_at, cost, expires_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
        [(w.id, provider, w.tenant, w.arrived_at, w.cost, now + WAITER_TTL_SECONDS) for w in waiters],
    )
    return freed > 0


def acquire(
    conn: sqlite3.Connection,
    wake: Wake,
    provider: str,
    limit: SlotLimit,
    waiters: Sequence[Waiter],
    gone: Sequence[str],
    lease_seconds: float,
    now: float,
) -> Plan:
    """One round of ``LimiterStore.acquire_provider_slots`` (see ``ingestd.slots``)."""
    if _expire_and_register(conn, provider, waiters, gone, now):
        wake.jobs.append(wake_key(provider))
    held = dict(
        conn.execute("SELECT tenant, count(*) FROM provider_slots WHERE provider = ? GROUP BY tenant", (provider,))
    )
    queue = [
        Waiter(*row)
        for row in conn.execute(
            "SELECT id, tenant, arrived_at, cost FROM provider_waiters WHERE provider = ?", (provider,)
        )
    ]
    granted = limiter_shared.grants(limit, _state(conn, provider), now=now, held=held, queue=queue, waiters=waiters)
    conn.executemany(
        "INSERT INTO provider_slots (holder_id, provider, tenant, acquired_at, lease_expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(holder, provider, tenant, now, now + lease_seconds) for holder, tenant in granted.holders],
    )
    conn.executemany("DELETE FROM provider_waiters WHERE id = ?", [(holder,) for holder, _ in granted.holders])
    if granted.state is not None:
        _save_state(conn, provider, granted.state)
    return granted.plan


def release(
    conn: sqlite3.Connection,
    wake: Wake,
    provider: str,
    holder_id: str,
    limit: SlotLimit,
    feedback: Feedback | None,
    now: float,
) -> None:
    """Free a slot and apply the call's feedback."""
    conn.execute("DELETE FROM provider_slots WHERE holder_id = ?", (holder_id,))
    if limiter_shared.feedback_changes_state(feedback, limit):
        new = limiter_shared.state_after(limit, _state(conn, provider), feedback, now)
        if new is not None:
            _save_state(conn, provider, new)
    wake.jobs.append(wake_key(provider))


def renew(conn: sqlite3.Connection, wake: Wake, holder_ids: Sequence[str], lease_seconds: float, now: float) -> None:
    conn.executemany(
        "UPDATE provider_slots SET lease_expires_at = ? WHERE holder_id = ?",
        [(now + lease_seconds, h) for h in holder_ids],
    )


_STATS = limiter_shared.stats_sql("?")


class SQLiteLimits:
    """``LimiterStore`` for ``SQLiteJobStore`` (a mixin: it uses the store's transaction and wake-up plumbing)."""

    if TYPE_CHECKING:
        _waiters: Waiters

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def _acquire_provider_slots(
        self, provider: str, limit: SlotLimit, waiters: Sequence[Waiter], gone: Sequence[str], lease_seconds: float
    ) -> Plan:
        return await self._write(acquire, provider, limit, list(waiters), list(gone), lease_seconds, time.time())

    async def release_provider_slot(
        self, provider: str, holder_id: str, limit: SlotLimit, feedback: Feedback | None = None
    ) -> None:
        await self._write(release, provider, holder_id, limit, feedback, time.time())

    async def renew_provider_slots(self, holder_ids: Sequence[str], lease_seconds: float) -> None:
        if holder_ids:
            await self._write(renew, list(holder_ids), lease_seconds, time.time())

    async def wait_for_provider_slots(self, provider: str, timeout: float) -> None:
        with self._waiters.events_sleeper(wake_key(provider)) as woken:
            try:
                await asyncio.wait_for(woken, timeout)
            except TimeoutError:
                pass

    async def provider_limiter_stats(self) -> list[JSON]:
        now = time.time()
        return limiter_shared.stats_from_rows(await self._read(_STATS, (now, now)))


__all__ = ["SQLiteLimits", "wake_key"]
