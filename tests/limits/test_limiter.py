"""The fleet-wide ``Limiter`` on a real store: two limiters on two connections stand for two worker processes.

Timing checks here are lower bounds (a pause or a rate makes calls start *no earlier* than...), which a slow or
busy machine cannot break."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ingestd import errors
from ingestd.limits import Limiter
from ingestd.settings import ProviderLimit
from ingestd.store import open_store
from ingestd.store.protocol import LimiterStore


class Probe:
    """Counts calls in flight (the "provider's" own view) and when each started."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.started: list[float] = []

    async def call(self, seconds: float = 0.02, answer: Any = "ok") -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.started.append(time.monotonic())
        try:
            await asyncio.sleep(seconds)
            return answer
        finally:
            self.in_flight -= 1


@pytest.fixture
async def limiters(database_url: str) -> AsyncIterator[Any]:
    """``make(limits)`` -> two limiters on two store connections; all closed afterwards."""
    opened: list[Any] = []

    async def make(limits: dict[str, ProviderLimit]) -> tuple[Limiter, Limiter, LimiterStore]:
        stores = [await open_store(database_url, migrate=False) for _ in range(2)]
        made = [Limiter(s, limits, lease_seconds=30) for s in stores]  # type: ignore[arg-type]
        opened.extend(made + stores)
        assert isinstance(stores[0], LimiterStore)
        return made[0], made[1], stores[0]

    yield make
    for item in opened:
        await item.close()


async def test_two_processes_share_one_concurrency_limit(limiters: Any) -> None:
    a, b, _ = await limiters({"p": ProviderLimit(concurrency=3)})
    probe = Probe()
    calls = [lim.call("p", probe.call, tenant="t") for lim in (a, b) for _ in range(12)]
    answers = await asyncio.gather(*calls)
    assert [c.answer for c in answers] == ["ok"] * 24
    assert probe.peak == 3  # never more, and the limit was used
    assert sum(c.waited_seconds > 0 for c in answers) > 0


async def test_a_rate_spaces_calls_after_the_burst(limiters: Any) -> None:
    a, b, _ = await limiters({"p": ProviderLimit(rate=5, per_seconds=1.0)})
    probe = Probe()
    before = time.monotonic()
    await asyncio.gather(*(lim.call("p", lambda: probe.call(0), tenant="t") for lim in (a, b) for _ in range(4)))
    # A full bucket lets 5 through at once; the other 3 need 0.2 s of refill each, counted from the first grant,
    # which comes after ``before``. (Not from the first call's start: on a busy machine the first granted call
    # may start late while the last starts on time.)
    assert max(probe.started) - before >= 0.55


async def test_retry_after_pauses_the_provider_for_every_process(limiters: Any) -> None:
    a, b, _ = await limiters({"p": ProviderLimit(concurrency=4)})

    async def throttled() -> None:
        raise errors.TransientError("slow down", retry_after=0.5, status_code=429)

    with pytest.raises(errors.TransientError):
        await a.call("p", throttled, tenant="t")
    refused_at = time.monotonic()
    await asyncio.sleep(0.05)  # the release (with the pause) is written in the background
    probe = Probe()
    await b.call("p", probe.call, tenant="t")  # the other "process"
    assert probe.started[0] - refused_at >= 0.4


async def test_a_timeout_is_transient_and_gives_the_slot_back(limiters: Any) -> None:
    a, _, _ = await limiters({"p": ProviderLimit(concurrency=1, timeout_seconds=0.1)})
    with pytest.raises(errors.TransientError, match=r"timed out after 0\.1 s"):
        await a.call("p", lambda: asyncio.sleep(10), tenant="t")
    # the slot was released: the next call does not wait for the 30 s lease
    called = await asyncio.wait_for(a.call("p", Probe().call, tenant="t"), 10)
    assert called.answer == "ok"


async def test_hedging_is_off_by_default_and_answers_from_the_second_call_when_on(limiters: Any) -> None:
    for hedge, expected_calls in ((None, 1), (0.05, 2)):
        a, _, _ = await limiters({"p": ProviderLimit(concurrency=2, hedge_after_seconds=hedge)})
        made: list[int] = []

        async def stuck_first(made: list[int] = made) -> str:
            made.append(1)
            await asyncio.sleep(0.4 if len(made) == 1 else 0.0)
            return f"call {len(made)}"

        called = await a.call("p", stuck_first, tenant="t")
        assert len(made) == expected_calls
        assert called.hedged is (hedge is not None)
        assert called.answer == ("call 1" if hedge is None else "call 2")


async def test_adaptive_limit_halves_on_a_429(limiters: Any) -> None:
    a, _, store = await limiters({"p": ProviderLimit(concurrency=8, adaptive=True, min_concurrency=1)})

    async def too_many() -> None:
        raise errors.TransientError("HTTP 429", status_code=429)

    await a.call("p", Probe().call, tenant="t")
    with pytest.raises(errors.TransientError):
        await a.call("p", too_many, tenant="t")
    deadline = time.monotonic() + 5
    while not [r for r in await store.provider_limiter_stats() if r["provider"] == "p" and r["concurrency"] == 4]:
        assert time.monotonic() < deadline, await store.provider_limiter_stats()
        await asyncio.sleep(0.02)


async def test_a_cancelled_waiter_leaves_nothing_behind(limiters: Any) -> None:
    a, b, store = await limiters({"p": ProviderLimit(concurrency=1)})
    gate, holding = asyncio.Event(), asyncio.Event()

    async def held() -> str:
        holding.set()
        await gate.wait()
        return "held"

    holder = asyncio.create_task(a.call("p", held, tenant="t"))
    await holding.wait()
    waiter = asyncio.create_task(b.call("p", Probe().call, tenant="u"))
    await asyncio.sleep(0.3)
    assert not waiter.done()  # the one slot is taken
    waiter.cancel()
    gate.set()
    assert (await holder).answer == "held"
    deadline = time.monotonic() + 5
    while [r for r in await store.provider_limiter_stats() if r["in_flight"] or r["waiting"]]:
        assert time.monotonic() < deadline, await store.provider_limiter_stats()
        await asyncio.sleep(0.05)
    assert (await a.call("p", Probe().call, tenant="t")).answer == "ok"


async def test_the_default_timeout_applies_to_configured_providers_only(database_url: str) -> None:
    store = await open_store(database_url, migrate=False)
    limiter = Limiter(store, {"named": ProviderLimit()}, default_timeout=0.1)  # type: ignore[arg-type]
    try:
        with pytest.raises(errors.TransientError, match="timed out"):
            await limiter.call("named", lambda: asyncio.sleep(0.3), tenant="t")
        # an offline model that is not named runs as long as it needs (its client has its own timeouts)
        assert (await limiter.call("offline-model", lambda: Probe().call(0.3), tenant="t")).answer == "ok"
    finally:
        await limiter.close()
        await store.close()
