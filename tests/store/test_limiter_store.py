"""The ``LimiterStore`` contract: fleet-wide provider slots, fairness, leases, feedback, wake-ups (every backend).

Two store instances stand in for two worker processes sharing the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest

from ingestd.slots import Feedback, SlotLimit, Waiter
from ingestd.store import open_store
from ingestd.store.protocol import JobStore, LimiterStore


def _limiter(store: JobStore) -> LimiterStore:
    assert isinstance(store, LimiterStore)
    return cast(LimiterStore, store)


@pytest.fixture
async def pair(store: JobStore) -> AsyncIterator[tuple[LimiterStore, LimiterStore]]:
    second = await open_store(store.url, migrate=False)
    try:
        yield _limiter(store), _limiter(second)
    finally:
        await second.close()


def _waiters(tenant: str, n: int, start: float, prefix: str = "") -> list[Waiter]:
    return [Waiter(f"{prefix}{tenant}{i}", tenant, start + i) for i in range(n)]


async def _stats(lim: LimiterStore, provider: str) -> dict[str, object]:
    return next(s for s in await lim.provider_limiter_stats() if s["provider"] == provider)


async def test_concurrency_is_shared_and_a_release_hands_the_slot_on(
    slow_fallback: float, pair: tuple[LimiterStore, LimiterStore]
) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=2)
    now = time.time()
    plan = await a.acquire_provider_slots("stt", limit, _waiters("t", 2, now, "a-"), lease_seconds=30)
    assert set(plan.granted) == {"a-t0", "a-t1"}
    late = [Waiter("b-t0", "t", now + 5)]
    assert (await b.acquire_provider_slots("stt", limit, late, lease_seconds=30)).granted == ()
    assert await _stats(b, "stt") == {"provider": "stt", "in_flight": 2, "waiting": 1, "concurrency": None}

    sleeper = asyncio.create_task(b.wait_for_provider_slots("stt", 30.0))
    await asyncio.sleep(0.05)
    await a.release_provider_slot("stt", "a-t0", limit)
    await asyncio.wait_for(sleeper, 5.0)  # woken by the other instance's release, not by a poll
    assert (await b.acquire_provider_slots("stt", limit, late, lease_seconds=30)).granted == ("b-t0",)
    assert (await _stats(a, "stt"))["waiting"] == 0


async def test_tenants_take_turns(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=2)
    now = time.time()
    # tenant "big" queued three calls before "small" queued one: they still alternate.
    await a.acquire_provider_slots("llm", SlotLimit(concurrency=0), _waiters("big", 3, now), lease_seconds=30)
    plan = await b.acquire_provider_slots("llm", limit, _waiters("small", 1, now + 10), lease_seconds=30)
    assert plan.granted == ("small0",)
    plan = await a.acquire_provider_slots("llm", limit, _waiters("big", 3, now), lease_seconds=30)
    assert plan.granted == ("big0",)


async def test_expired_slots_and_gone_waiters_stop_blocking(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=1)
    now = time.time()
    assert (await a.acquire_provider_slots("p", limit, [Waiter("dead", "t", now)], lease_seconds=0.05)).granted
    blocked = [Waiter("w1", "t", now + 1)]
    await asyncio.sleep(0.1)  # the holder died: its slot's lease runs out
    assert (await b.acquire_provider_slots("p", limit, blocked, lease_seconds=30)).granted == ("w1",)

    await b.acquire_provider_slots("p", limit, [Waiter("ahead", "t", now + 2)], lease_seconds=30)  # queued
    assert (await a.acquire_provider_slots("p", SlotLimit(concurrency=2), [], lease_seconds=30)).granted == ()
    # "ahead" is first in line; once its caller gives up, the next waiter gets the free place.
    mine = [Waiter("next", "t", now + 3)]
    two = SlotLimit(concurrency=2)
    assert (await a.acquire_provider_slots("p", two, mine, lease_seconds=30)).granted == ()
    assert (await a.acquire_provider_slots("p", two, mine, gone=["ahead"], lease_seconds=30)).granted == ("next",)


async def test_renewed_slots_are_kept(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=1)
    now = time.time()
    assert (await a.acquire_provider_slots("p", limit, [Waiter("long", "t", now)], lease_seconds=0.3)).granted
    await a.renew_provider_slots(["long"], 30)
    await asyncio.sleep(0.4)
    assert (await b.acquire_provider_slots("p", limit, [Waiter("x", "t", now + 1)], lease_seconds=30)).granted == ()
    assert (await _stats(b, "p"))["in_flight"] == 1


async def test_retry_after_pauses_everyone(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=5)
    now = time.time()
    await a.acquire_provider_slots("p", limit, [Waiter("c", "t", now)], lease_seconds=30)
    await a.release_provider_slot("p", "c", limit, Feedback(pause_seconds=20))
    plan = await b.acquire_provider_slots("p", limit, [Waiter("d", "t", now + 1)], lease_seconds=30)
    assert plan.granted == () and 15 < plan.retry_in <= 20


async def test_congestion_halves_the_adaptive_limit(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(concurrency=8, adaptive=True)
    now = time.time()
    await a.acquire_provider_slots("p", limit, [Waiter("c", "t", now)], lease_seconds=30)
    await a.release_provider_slot("p", "c", limit, Feedback(congested=True, started_at=now))
    assert (await _stats(b, "p"))["concurrency"] == 4


async def test_rate_bucket_is_shared(pair: tuple[LimiterStore, LimiterStore]) -> None:
    a, b = pair
    limit = SlotLimit(rate=2, per_seconds=60)
    now = time.time()
    assert len((await a.acquire_provider_slots("p", limit, _waiters("t", 2, now), lease_seconds=30)).granted) == 2
    plan = await b.acquire_provider_slots("p", limit, [Waiter("b", "t", now + 5)], lease_seconds=30)
    assert plan.granted == () and 20 < plan.retry_in <= 30  # one call's worth of tokens takes 30 s
