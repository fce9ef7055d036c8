"""Provider limits shared by the whole fleet: the process side.

A ``Limiter`` (one per worker process) makes each provider call inside a slot taken from the store, so the
limits hold across every process and machine that shares the database (``store.LimiterStore``; the decisions
themselves are ``ingestd.slots``). Per provider, one "pump" task asks the store for slots on behalf of all of the
process's waiting calls at once, then sleeps until a slot is released somewhere (the store's wake-up: NOTIFY on
PostgreSQL, the wake-up socket on SQLite) or the rate bucket refills, so waiting costs no polling loop per call.

Around the call itself: a timeout (``TransientError`` when it passes), the provider's ``Retry-After`` pausing
everyone, the adaptive limit's feedback (a 429, a timeout or a call ``slow_factor`` times slower than usual
halves it; a healthy call grows it by 1/limit) and, when configured, one hedged second call for a call still
running after ``hedge_after_seconds`` (only if a slot is free at once; the first answer wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx

from ingestd import errors
from ingestd.settings import ProviderLimit, Settings
from ingestd.slots import MAX_POLL_SECONDS, Feedback, SlotLimit, Waiter
from ingestd.store.protocol import LimiterStore

R = TypeVar("R")
log = logging.getLogger("ingestd.limits")


@dataclass(frozen=True)
class Called(Generic[R]):
    """A provider call's answer, with how long it waited for its slot and whether a hedge answered."""

    answer: R
    waited_seconds: float
    hedged: bool = False


def slot_limit(cfg: ProviderLimit) -> SlotLimit:
    """The store-side view of a provider's configuration."""
    return SlotLimit(cfg.concurrency, cfg.rate, cfg.per_seconds, cfg.min_concurrency, cfg.adaptive)


def is_limited(cfg: ProviderLimit | None) -> bool:
    return cfg is not None and (cfg.concurrency is not None or cfg.rate is not None)


def is_pushback(exc: BaseException) -> bool:
    """A provider saying "too much": a 429, a Retry-After, or a timeout."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, errors.TransientError):
        status = exc.extra.get("status_code", exc.extra.get("status"))  # providers.http names it status_code
        return exc.retry_after is not None or status == 429
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429


@dataclass
class _Latency:
    """The provider's healthy latency: an exponentially weighted mean of successful calls."""

    mean: float = 0.0
    samples: int = 0

    def slow(self, seconds: float, factor: float) -> bool:
        return self.samples >= 5 and seconds > factor * self.mean

    def add(self, seconds: float) -> None:
        self.samples += 1
        self.mean = seconds if self.samples == 1 else 0.9 * self.mean + 0.1 * seconds


@dataclass
class _Gate:
    """One provider's waiting calls in this process, and the pump that asks the store for their slots."""

    waiting: dict[str, tuple[Waiter, asyncio.Future[None]]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


class Limiter:
    """Fleet-wide concurrency and rate limits per provider, fair between tenants.

    Args:
        store: a store implementing ``LimiterStore``.
        limits: per provider name, its limits (``Settings.provider_limits``); providers not named are unlimited.
        lease_seconds: slot lease; a dead process's slots free up after it. Renewed while calls run.
        default_timeout: per-call timeout of a configured provider whose configuration names none.
    """

    def __init__(
        self,
        store: LimiterStore,
        limits: Mapping[str, ProviderLimit],
        *,
        lease_seconds: float = 30.0,
        default_timeout: float = 120.0,
    ) -> None:
        self._store = store
        self._limits = dict(limits)
        self._lease = lease_seconds
        self._default_timeout = default_timeout
        self._gates: dict[str, _Gate] = {}
        self._held: dict[str, str] = {}  # slot holder id -> provider
        self._latency: dict[str, _Latency] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self.wait_seconds_total: dict[str, float] = {}  # for metrics
        self.calls_total: dict[str, int] = {}

    async def close(self) -> None:
        """Stop the pumps and the renewer; release what is still held."""
        tasks = [g.pump for g in self._gates.values() if g.pump] + ([self._renewer] if self._renewer else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while self._background:  # releases, including any a pump started while it was being stopped
            await asyncio.gather(*list(self._background), return_exceptions=True)
        for holder, provider in list(self._held.items()):
            with contextlib.suppress(Exception):
                await self._store.release_provider_slot(provider, holder, self._slot_limit(provider))
        self._held.clear()

    async def call(
        self,
        provider: str,
        fn: Callable[[], Awaitable[R]],
        *,
        tenant: str,
        cost_of: Callable[[R], float] | None = None,
    ) -> Called[R]:
        """Make one call of ``provider`` within its limits and timeout.

        Args:
            provider: the provider's name in ``Settings.provider_limits``.
            fn: makes the call; may be called twice when hedging is configured.
            tenant: whose call it is (fairness); use one shared name to opt out of tenant fairness.
            cost_of: rate units the answer used (tokens), for providers limited in tokens.
        """
        cfg = self._limits.get(provider)
        # A provider that is not configured keeps its client's own timeouts (offline models run on the CPU
        # for as long as the input needs; hosted clients time out after provider_timeout_seconds themselves).
        timeout = None if cfg is None else cfg.timeout_seconds or self._default_timeout
        if cfg is None or not is_limited(cfg):
            return Called(await self._timed(fn, timeout), 0.0)
        asked = time.monotonic()
        holder = await self._acquire(provider, tenant, cfg)
        waited = time.monotonic() - asked
        self.wait_seconds_total[provider] = self.wait_seconds_total.get(provider, 0.0) + waited
        self.calls_total[provider] = self.calls_total.get(provider, 0) + 1
        started, began = time.time(), time.monotonic()
        feedback = Feedback(started_at=started)
        try:
            answer, hedged = await self._run(provider, cfg, fn, timeout, tenant)
            feedback = self._success_feedback(provider, cfg, time.monotonic() - began, started, answer, cost_of)
            return Called(answer, waited, hedged)
        except BaseException as exc:
            feedback = self._failure_feedback(exc, started)
            raise
        finally:
            self._release_soon(provider, holder, feedback)

    # --- around the call ------------------------------------------------------------------------
    @staticmethod
    async def _timed(fn: Callable[[], Awaitable[R]], timeout: float | None) -> R:
        if timeout is None:
            return await fn()
        try:
            async with asyncio.timeout(timeout):
                return await fn()
        except TimeoutError as exc:
            raise errors.TransientError(f"provider call timed out after {timeout:g} s") from exc

    async def _run(
        self, provider: str, cfg: ProviderLimit, fn: Callable[[], Awaitable[R]], timeout: float | None, tenant: str
    ) -> tuple[R, bool]:
        if cfg.hedge_after_seconds is None:
            return await self._timed(fn, timeout), False
        return await self._timed(lambda: self._hedged(provider, cfg, fn, tenant), timeout)

    async def _hedged(
        self, provider: str, cfg: ProviderLimit, fn: Callable[[], Awaitable[R]], tenant: str
    ) -> tuple[R, bool]:
        first = asyncio.ensure_future(fn())
        try:
            done, _ = await asyncio.wait({first}, timeout=cfg.hedge_after_seconds)
            if done:
                return first.result(), False
            holder = await self._try_acquire_now(provider, tenant, cfg)
            if holder is None:  # no free slot: a hedge would only queue behind other calls
                return await first, False
            try:
                return await _first_success(first, asyncio.ensure_future(fn()))
            finally:
                self._release_soon(provider, holder, Feedback(started_at=time.time()))
        finally:
            first.cancel()

    def _success_feedback(
        self,
        provider: str,
        cfg: ProviderLimit,
        seconds: float,
        started: float,
        answer: R,
        cost_of: Callable[[R], float] | None,
    ) -> Feedback:
        latency = self._latency.setdefault(provider, _Latency())
        slow = latency.slow(seconds, cfg.slow_factor)
        if not slow:
            latency.add(seconds)
        extra = 0.0
        if cfg.rate_unit == "tokens" and cost_of is not None:
            extra = max(0.0, cost_of(answer) - 1.0)  # one unit was taken up front
        return Feedback(congested=slow, healthy=not slow, started_at=started, extra_cost=extra)

    @staticmethod
    def _failure_feedback(exc: BaseException, started: float) -> Feedback:
        if not isinstance(exc, Exception) or not is_pushback(exc):
            return Feedback(started_at=started)
        pause = exc.retry_after if isinstance(exc, errors.TransientError) else None
        return Feedback(congested=True, started_at=started, pause_seconds=pause or 0.0)

    # --- slots ----------------------------------------------------------------------------------
    def _slot_limit(self, provider: str) -> SlotLimit:
        cfg = self._limits.get(provider)
        return slot_limit(cfg) if cfg else SlotLimit()

    async def _acquire(self, provider: str, tenant: str, cfg: ProviderLimit) -> str:
        waiter = Waiter(uuid.uuid4().hex, tenant, time.time())
        gate = self._gates.setdefault(provider, _Gate())
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiting[waiter.id] = (waiter, granted)
        gate.wake.set()
        if gate.pump is None or gate.pump.done():
            gate.pump = asyncio.create_task(self._pump(provider, gate), name=f"ingestd-limiter-{provider}")
        self._start_renewer()
        try:
            await granted
        except BaseException:
            if gate.waiting.pop(waiter.id, None) is not None:
                gate.gone.append(waiter.id)  # the pump tells the store on its next round
            elif granted.done() and not granted.cancelled():  # granted, then cancelled before running
                self._release_soon(provider, waiter.id, None)
            raise
        return waiter.id

    async def _try_acquire_now(self, provider: str, tenant: str, cfg: ProviderLimit) -> str | None:
        waiter = Waiter(uuid.uuid4().hex, tenant, time.time())
        limit = slot_limit(cfg)
        plan = await self._store.acquire_provider_slots(provider, limit, [waiter], lease_seconds=self._lease)
        if waiter.id in plan.granted:
            self._held[waiter.id] = provider
            return waiter.id
        await self._store.acquire_provider_slots(provider, limit, [], gone=[waiter.id], lease_seconds=self._lease)
        return None

    async def _pump(self, provider: str, gate: _Gate) -> None:
        limit = self._slot_limit(provider)
        while gate.waiting or gate.gone:
            gate.wake.clear()
            waiters = [w for w, _ in gate.waiting.values()]
            gone, gate.gone = gate.gone, []
            try:
                plan = await self._store.acquire_provider_slots(
                    provider, limit, waiters, gone=gone, lease_seconds=self._lease
                )
            except Exception:
                log.exception("limiter: asking the store for %s slots failed; retrying", provider)
                gate.gone.extend(gone)
                await asyncio.sleep(1.0)
                continue
            for holder in plan.granted:
                self._hand_over(provider, gate, holder)
            if gate.waiting:
                await self._sleep(provider, gate, min(plan.retry_in, MAX_POLL_SECONDS))

    def _hand_over(self, provider: str, gate: _Gate, holder: str) -> None:
        self._held[holder] = provider
        entry = gate.waiting.pop(holder, None)
        if entry is None or entry[1].done():  # the caller gave up meanwhile: free its slot again
            self._release_soon(provider, holder, None)
        else:
            entry[1].set_result(None)

    async def _sleep(self, provider: str, gate: _Gate, timeout: float) -> None:
        """Until a local release or a new waiter (``gate.wake``), a release anywhere (the store), or timeout."""
        local = asyncio.ensure_future(gate.wake.wait())
        remote = asyncio.ensure_future(self._store.wait_for_provider_slots(provider, timeout))
        try:
            await asyncio.wait({local, remote}, timeout=timeout + 0.5, return_when=asyncio.FIRST_COMPLETED)
        finally:
            local.cancel()
            remote.cancel()
            await asyncio.gather(local, remote, return_exceptions=True)

    def _release_soon(self, provider: str, holder: str, feedback: Feedback | None) -> None:
        """Release in a task of its own, so a cancelled job still gives its slot back."""
        task = asyncio.create_task(self._release(provider, holder, feedback))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release(self, provider: str, holder: str, feedback: Feedback | None) -> None:
        self._held.pop(holder, None)
        try:
            await self._store.release_provider_slot(provider, holder, self._slot_limit(provider), feedback)
        except Exception:  # the lease frees it later
            log.exception("limiter: releasing a %s slot failed", provider)
        gate = self._gates.get(provider)
        if gate is not None:
            gate.wake.set()

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="ingestd-limiter-renew")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            if self._held:
                try:
                    await self._store.renew_provider_slots(list(self._held), self._lease)
                except Exception:
                    log.exception("limiter: renewing slot leases failed")


def limiter_for(store: object, settings: Settings) -> Limiter | None:
    """The process's limiter: limits from ``Settings.provider_limits`` and per-call timeouts
    (``provider_timeout_seconds`` unless a provider names its own); None when the store keeps no slots."""
    if not isinstance(store, LimiterStore):
        return None
    return Limiter(
        store,
        settings.provider_limits,
        lease_seconds=settings.limiter_lease_seconds,
        default_timeout=settings.provider_timeout_seconds,
    )


async def _first_success(first: asyncio.Future[R], second: asyncio.Future[R]) -> tuple[R, bool]:
    """The first successful answer of two calls (and whether it was the hedge); the other is cancelled."""
    pending: set[asyncio.Future[R]] = {first, second}
    failure: BaseException | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is None:
                    return task.result(), task is second
                failure = task.exception()
        assert failure is not None
        raise failure
    finally:
        for task in pending:
            task.cancel()


__all__ = ["Called", "Limiter", "is_limited", "is_pushback", "limiter_for", "slot_limit"]
