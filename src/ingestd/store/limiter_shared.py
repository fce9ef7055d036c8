"""What both ``LimiterStore`` backends decide and spell the same way; each backend only reads and writes its rows.

An acquire round (under the provider's lock): drop what expired, register the asking waiters, read who holds slots
and who waits, then ``grants`` says which waiters get a slot and which state to store. A release frees the slot
and, when the call's feedback can change the provider's state (``feedback_changes_state``), stores the state
``state_after`` gives. The state row's upsert and the stats statement are written here once for both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, TypeGuard

from ingestd.models import JSON
from ingestd.slots import Feedback, Plan, ProviderState, SlotLimit, Waiter, apply_feedback, changes_state, plan_grants

STATE_COLUMNS = "tokens, tokens_at, concurrency, paused_until, decreased_at"


def save_state_sql(placeholders: str) -> str:
    """The upsert of a provider's state row, its six values (``state_params``) bound by ``placeholders``."""
    return (
        f"INSERT INTO provider_state (provider, {STATE_COLUMNS}) VALUES ({placeholders}) "
        "ON CONFLICT (provider) DO UPDATE SET tokens = excluded.tokens, tokens_at = excluded.tokens_at, "
        "concurrency = excluded.concurrency, paused_until = excluded.paused_until, "
        "decreased_at = excluded.decreased_at"
    )


def state_params(provider: str, s: ProviderState) -> tuple[Any, ...]:
    return (provider, s.tokens, s.tokens_at, s.concurrency, s.paused_until, s.decreased_at)


def state_from_row(row: Sequence[Any] | None) -> ProviderState:
    """The state from a row of ``STATE_COLUMNS`` (no row yet: a full bucket, the configured limits)."""
    return ProviderState(*row) if row else ProviderState()


class Grants(NamedTuple):
    """An acquire round's answer: the plan, the slots to insert and the state to store."""

    plan: Plan
    holders: list[tuple[str, str]]  # (holder id, tenant) of each waiter granted a slot, in order
    state: ProviderState | None  # None: the stored state stands


def grants(
    limit: SlotLimit,
    state: ProviderState,
    *,
    now: float,
    held: dict[str, int],
    queue: Sequence[Waiter],
    waiters: Sequence[Waiter],
) -> Grants:
    """Which of the asking ``waiters`` get a slot, given the slots ``held`` per tenant and the whole ``queue``. Only
    a rate limit's state changes on a grant (its tokens), so only then is there a state to store."""
    plan = plan_grants(limit, state, now=now, held_by_tenant=held, waiters=queue, mine=frozenset(w.id for w in waiters))
    tenant_of = {w.id: w.tenant for w in waiters}
    holders = [(holder, tenant_of[holder]) for holder in plan.granted]
    return Grants(plan, holders, plan.state if holders and limit.rate is not None else None)


def feedback_changes_state(feedback: Feedback | None, limit: SlotLimit) -> TypeGuard[Feedback]:
    """Whether a release must read and maybe store the state (else it only frees its slot)."""
    return feedback is not None and changes_state(limit, feedback)


def state_after(limit: SlotLimit, state: ProviderState, feedback: Feedback, now: float) -> ProviderState | None:
    """The state to store after a call's feedback; None when it stays as it is."""
    new = apply_feedback(limit, state, feedback, now=now)
    return new if new != state else None


def stats_sql(now: str) -> str:
    """The statement of ``provider_limiter_stats``, live slots and waiters being those not expired at ``now`` (an
    SQL expression: SQLite binds the time, PostgreSQL reads the server's clock)."""
    return (
        "SELECT p.provider,"
        f" (SELECT count(*) FROM provider_slots s WHERE s.provider = p.provider AND s.lease_expires_at >= {now}),"
        f" (SELECT count(*) FROM provider_waiters w WHERE w.provider = p.provider AND w.expires_at >= {now}),"
        " (SELECT concurrency FROM provider_state t WHERE t.provider = p.provider)"
        " FROM (SELECT provider FROM provider_slots UNION SELECT provider FROM provider_waiters"
        " UNION SELECT provider FROM provider_state) p ORDER BY p.provider"
    )


def stats_from_rows(rows: Sequence[Sequence[Any]]) -> list[JSON]:
    """``provider_limiter_stats`` from the rows of ``stats_sql`` (both backends select the same four columns)."""
    return [
        {"provider": provider, "in_flight": in_flight, "waiting": waiting, "concurrency": concurrency}
        for provider, in_flight, waiting, concurrency in rows
    ]


__all__ = [
    "STATE_COLUMNS",
    "Grants",
    "feedback_changes_state",
    "grants",
    "save_state_sql",
    "state_after",
    "state_from_row",
    "state_params",
    "stats_from_rows",
    "stats_sql",
]
