"""The fleet-wide provider limiter's decisions, as pure functions the store runs inside its transaction.

Every backend keeps the same three things per provider (``store/sqlite_limits.py``, ``store/postgres_limits.py``):

* **slots**: calls in flight, one row each, leased (a dead worker's slots expire);
* **waiters**: callers waiting for a slot, one row each, with the tenant and the arrival time (they expire too,
  so a dead process's waiters stop blocking the queue);
* **state**: one row with the rate bucket (tokens and when they were counted), the adaptive concurrency limit
  and a pause until a provider's ``Retry-After`` has passed.

Under the provider's lock (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL) a backend
loads these, asks ``plan_grants`` which of the asking process's waiters get a slot now, and writes the answer.
Fairness between tenants: waiters are ranked round-robin, the k-th oldest waiter of a tenant that already holds
h slots at rank h + k (ties by arrival), so a tenant with 500 queued calls and one with a single call alternate
instead of queueing first-come-first-served.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A waiter row lives this long without being refreshed; its process refreshes it at least every
# ``MAX_POLL_SECONDS`` while it waits, so only a dead process's waiters expire.
WAITER_TTL_SECONDS = 10.0
MAX_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class SlotLimit:
    """One provider's limits as the store applies them. ``None`` means unlimited."""

    concurrency: int | None = None
    rate: float | None = None  # calls (or tokens) per ``per_seconds``
    per_seconds: float = 60.0
    min_concurrency: int = 1
    adaptive: bool = False


@dataclass(frozen=True)
class Waiter:
    """A caller waiting for a slot."""

    id: str
    tenant: str
    arrived_at: float  # Unix seconds
    cost: float = 1.0  # rate units this call takes up front (1 for calls; an estimate for tokens)


@dataclass(frozen=True)
class ProviderState:
    """The provider's shared row. ``concurrency`` is the adaptive limit (None: use the configured one)."""

    tokens: float | None = None  # None: a full bucket
    tokens_at: float = 0.0
    concurrency: float | None = None
    paused_until: float = 0.0
    decreased_at: float = 0.0


@dataclass(frozen=True)
class Plan:
    """What to write: which waiters got a slot, the new state, and when asking again can help."""

    granted: tuple[str, ...]
    state: ProviderState
    retry_in: float  # seconds; MAX_POLL_SECONDS when only a release can help


def effective_concurrency(limit: SlotLimit, state: ProviderState) -> int | None:
    """The concurrency in force: the adaptive limit when on, never above the configured one."""
    if limit.concurrency is None:
        return None
    if not limit.adaptive or state.concurrency is None:
        return limit.concurrency
    return max(limit.min_concurrency, min(limit.concurrency, math.floor(state.concurrency)))


def refill(limit: SlotLimit, state: ProviderState, now: float) -> float:
    """Tokens in the bucket at ``now``: it holds at most ``rate`` and refills at ``rate / per_seconds``."""
    if limit.rate is None:
        return math.inf
    if state.tokens is None:
        return limit.rate
    elapsed = max(0.0, now - state.tokens_at)
    return min(limit.rate, state.tokens + elapsed * limit.rate / limit.per_seconds)


def fair_order(waiters: Sequence[Waiter], held_by_tenant: Mapping[str, int]) -> list[Waiter]:
    """Waiters in the order they should be served (round-robin between tenants, see the module docstring)."""
    seen: dict[str, int] = {}
    ranked: list[tuple[int, float, str, Waiter]] = []
    for waiter in sorted(waiters, key=lambda w: (w.arrived_at, w.id)):
        k = seen.get(waiter.tenant, 0)
        seen[waiter.tenant] = k + 1
        ranked.append((held_by_tenant.get(waiter.tenant, 0) + k, waiter.arrived_at, waiter.id, waiter))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [r[3] for r in ranked]


def plan_grants(
    limit: SlotLimit,
    state: ProviderState,
    *,
    now: float,
    held_by_tenant: Mapping[str, int],
    waiters: Sequence[Waiter],
    mine: frozenset[str],
) -> Plan:
    """Grant slots to the waiters in ``mine`` that are at the head of the fair queue and fit the limits.

    ``waiters`` are every live waiter of the provider (all processes). A waiter of another process ahead in the
    queue keeps its place: we grant only within the first ``free`` positions, so its own process takes it.
    """
    tokens = refill(limit, state, now)
    if now < state.paused_until:
        return Plan((), state, state.paused_until - now)
    concurrency = effective_concurrency(limit, state)
    held = sum(held_by_tenant.values())
    free = len(waiters) if concurrency is None else max(0, concurrency - held)
    granted: list[str] = []
    spent = 0.0
    retry_in = MAX_POLL_SECONDS
    for position, waiter in enumerate(fair_order(waiters, held_by_tenant)):
        if position >= free:
            break
        if tokens - spent < waiter.cost:
            retry_in = _time_to_tokens(limit, waiter.cost - (tokens - spent))
            break
        spent += waiter.cost
        if waiter.id in mine:
            granted.append(waiter.id)
    new_tokens = None if limit.rate is None else tokens - spent
    new_state = ProviderState(new_tokens, now, state.concurrency, state.paused_until, state.decreased_at)
    return Plan(tuple(granted), new_state, retry_in)


def _time_to_tokens(limit: SlotLimit, missing: float) -> float:
    assert limit.rate is not None
    return max(0.001, missing * limit.per_seconds / limit.rate)


@dataclass(frozen=True)
class Feedback:
    """How a call went, for the adaptive limit and the rate bucket, reported when its slot is released.

    Attributes:
        congested: the provider pushed back (a 429, or latency well above its healthy level): halve the limit.
        healthy: a normal success: grow the limit by 1/limit (additive increase, about +1 per round trip).
        started_at: when the call got its slot; one congestion wave halves the limit once, not once per call.
        pause_seconds: a provider's ``Retry-After``: nobody calls it before that.
        extra_cost: rate units used beyond what was taken up front (tokens counted after the answer).
    """

    congested: bool = False
    healthy: bool = False
    started_at: float = 0.0
    pause_seconds: float = 0.0
    extra_cost: float = 0.0


def changes_state(limit: SlotLimit, feedback: Feedback) -> bool:
    """Whether a call's feedback can change the provider's state (``apply_feedback``); if not, releasing its slot
    only deletes the slot."""
    return bool(limit.adaptive or feedback.pause_seconds or feedback.extra_cost)


def apply_feedback(limit: SlotLimit, state: ProviderState, feedback: Feedback, *, now: float) -> ProviderState:
    """The provider's state after a call ended: AIMD on the limit, the pause, the extra rate cost."""
    tokens = state.tokens
    if limit.rate is not None and feedback.extra_cost:
        tokens = refill(limit, state, now) - feedback.extra_cost
    tokens_at = now if tokens is not state.tokens else state.tokens_at
    paused_until = max(state.paused_until, now + feedback.pause_seconds)
    concurrency, decreased_at = state.concurrency, state.decreased_at
    if limit.adaptive and limit.concurrency is not None:
        current = float(limit.concurrency if state.concurrency is None else state.concurrency)
        current = min(float(limit.concurrency), max(float(limit.min_concurrency), current))
        if feedback.congested and feedback.started_at >= state.decreased_at:
            concurrency, decreased_at = max(float(limit.min_concurrency), current / 2), now
        elif feedback.healthy:
            concurrency = min(float(limit.concurrency), current + 1 / current)
    return ProviderState(tokens, tokens_at, concurrency, paused_until, decreased_at)


__all__ = [
    "MAX_POLL_SECONDS",
    "WAITER_TTL_SECONDS",
    "Feedback",
    "Plan",
    "ProviderState",
    "SlotLimit",
    "Waiter",
    "apply_feedback",
    "changes_state",
    "effective_concurrency",
    "fair_order",
    "plan_grants",
    "refill",
]
