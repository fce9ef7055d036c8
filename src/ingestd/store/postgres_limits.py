"""The PostgreSQL store's ``LimiterStore``: provider slots, waiters and state shared by every worker of a fleet.

Each decision runs in one transaction holding a per-provider advisory transaction lock (the lock
``ingestd.slots`` asks for), reads the provider's rows, asks ``plan_grants`` and writes the answer. Limiter times
are Unix seconds on both backends; here they are the server's clock (``now()``), the same for every machine.
A freed slot or queue place wakes the sleepers of ``wait_for_provider_slots`` in every process (``postgres_listen``).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ingestd.models import JSON
from ingestd.slots import WAITER_TTL_SECONDS, Feedback, Plan, ProviderState, SlotLimit, Waiter
from ingestd.store import limiter_shared
from ingestd.store.postgres_base import PostgresBase

_EPOCH = "extract(epoch FROM now())::float8"
# The lock key: a 64-bit hash of the provider, namespaced so it cannot collide with the migration lock.
# Limiter transactions commit without waiting for their WAL flush (like claims, ``postgres_sql.NO_FSYNC``):
# slots and waiters are leased and short-lived, so losing the last few in a server crash only frees a slot
# early or holds one until its lease ends; an fsync per grant and per release would halve the limiter's pace.
_LOCK = (
    f"SELECT {_EPOCH}, set_config('synchronous_commit', 'off', true)"
    " FROM pg_advisory_xact_lock(hashtextextended('ingestd-slots:' || $1, 0))"
)

# $1 provider, $2 now, $3 gone ids: drop expired slots and waiters and the gone waiters; returns how many.
_EXPIRE = """
WITH s AS (DELETE FROM provider_slots WHERE provider = $1 AND lease_expires_at < $2 RETURNING 1),
w AS (DELETE FROM provider_waiters WHERE provider = $1 AND (expires_at < $2 OR id = ANY($3::text[])) RETURNING 1)
SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM w)
"""
# $1 provider, $2 expires_at, $3.. the waiters as arrays.
_REGISTER = """
INSERT INTO provider_waiters (id, provider, tenant, arrived_at, cost, expires_at)
SELECT w.id, $1, w.tenant, w.arrived_at, w.cost, $2
FROM unnest($3::text[], $4::text[], $5::float8[], $6::float8[]) AS w(id, tenant, arrived_at, cost)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
"""
_GRANT = """
WITH slots AS (
    INSERT INTO provider_slots (holder_id, provider, tenant, acquired_at, lease_expires_at)
    SELECT h, $1, t, $4::float8, $4::float8 + $5::float8 FROM unnest($2::text[], $3::text[]) AS g(h, t)
)
DELETE FROM provider_waiters WHERE id = ANY($2::text[])
"""
_SAVE_STATE = limiter_shared.save_state_sql("$1, $2, $3, $4, $5, $6")
_STATS = limiter_shared.stats_sql(_EPOCH)


async def _state(conn: asyncpg.Connection, provider: str) -> ProviderState:
    return limiter_shared.state_from_row(
        await conn.fetchrow(f"SELECT {limiter_shared.STATE_COLUMNS} FROM provider_state WHERE provider = $1", provider)
    )


async def _save_state(conn: asyncpg.Connection, provider: str, s: ProviderState) -> None:
    await conn.execute(_SAVE_STATE, *limiter_shared.state_params(provider, s))


async def _expire_and_register(
    conn: asyncpg.Connection, provider: str, waiters: Sequence[Waiter], gone: Sequence[str], now: float
) -> bool:
    """Drop expired slots/waiters and ``gone``; upsert ``waiters``. True if a place in the queue opened up."""
    freed = await conn.fetchval(_EXPIRE, provider, now, list(gone))
    if waiters:
        columns = ([w.id for w in waiters], [w.tenant for w in waiters], [w.arrived_at for w in waiters],
                   [w.cost for w in waiters])  # fmt: skip
        await conn.execute(_REGISTER, provider, now + WAITER_TTL_SECONDS, *columns)
    return bool(freed) or bool(gone)


class PostgresLimits(PostgresBase):
    """``LimiterStore`` for ``PostgresJobStore``."""

    async def _acquire_provider_slots(
        self, provider: str, limit: SlotLimit, waiters: Sequence[Waiter], gone: Sequence[str], lease_seconds: float
    ) -> Plan:
        async with self._acquire() as conn, conn.transaction():
            now = float(await conn.fetchval(_LOCK, provider))
            freed = await _expire_and_register(conn, provider, waiters, gone, now)
            held = {r["tenant"]: int(r["held"]) for r in await conn.fetch(
                "SELECT tenant, count(*) AS held FROM provider_slots WHERE provider = $1 GROUP BY tenant", provider
            )}  # fmt: skip
            rows = await conn.fetch(
                "SELECT id, tenant, arrived_at, cost FROM provider_waiters WHERE provider = $1", provider
            )
            queue = [Waiter(*r) for r in rows]
            granted = limiter_shared.grants(
                limit, await _state(conn, provider), now=now, held=held, queue=queue, waiters=waiters
            )
            if granted.holders:
                holders, tenants = [h for h, _ in granted.holders], [t for _, t in granted.holders]
                await conn.execute(_GRANT, provider, holders, tenants, now, lease_seconds)
            if granted.state is not None:
                await _save_state(conn, provider, granted.state)
        if freed:  # a place in the queue opened up: waiters behind it may go now
            self._wake(slots=[provider])
        return granted.plan

    async def release_provider_slot(
        self, provider: str, holder_id: str, limit: SlotLimit, feedback: Feedback | None = None
    ) -> None:
        if not limiter_shared.feedback_changes_state(feedback, limit):
            await self._execute("DELETE FROM provider_slots WHERE holder_id = $1", holder_id)
            self._wake(slots=[provider])
            return
        async with self._acquire() as conn, conn.transaction():
            now = float(await conn.fetchval(_LOCK, provider))
            await conn.execute("DELETE FROM provider_slots WHERE holder_id = $1", holder_id)
            new = limiter_shared.state_after(limit, await _state(conn, provider), feedback, now)
            if new is not None:
                await _save_state(conn, provider, new)
        self._wake(slots=[provider])

    async def renew_provider_slots(self, holder_ids: Sequence[str], lease_seconds: float) -> None:
        if holder_ids:
            await self._execute(
                f"UPDATE provider_slots SET lease_expires_at = {_EPOCH} + $2 WHERE holder_id = ANY($1::text[])",
                list(holder_ids),
                lease_seconds,
                idempotent=True,
            )

    async def provider_limiter_stats(self) -> list[JSON]:
        return limiter_shared.stats_from_rows(await self._fetch(_STATS, idempotent=True))


__all__ = ["PostgresLimits"]
