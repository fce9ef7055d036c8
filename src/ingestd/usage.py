"""What provider calls cost: counters per call and money from the operator's price table.

Counters recorded on a step, per provider: ``calls``, ``tokens_in``, ``tokens_out``, ``audio_seconds``,
``cost`` (money, from ``Settings.prices``) and ``limiter_wait_seconds`` (time spent waiting for a fleet-wide
provider slot). The job's ``usage`` adds them up per provider and per stage (``runner.JobRunner.usage_summary``).

Prices are per provider, then per model, with ``"*"`` for any model of that provider::

    INGESTD_PRICES='{"openai": {"gpt-4o-mini": {"per_1k_tokens_in": 0.00015, "per_1k_tokens_out": 0.0006}},
                     "deepgram": {"*": {"per_audio_minute": 0.0043}}}'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ingestd.settings import Price

COUNTERS = ("calls", "tokens_in", "tokens_out", "audio_seconds", "cost", "limiter_wait_seconds")


def price_for(prices: Mapping[str, Mapping[str, Price]], provider: str, model: str | None) -> Price | None:
    """The price of ``model`` at ``provider`` (or the provider's ``"*"`` price), or None when not priced."""
    by_model = prices.get(provider)
    if not by_model:
        return None
    if model is not None and model in by_model:
        return by_model[model]
    return by_model.get("*")


def cost_of(price: Price | None, counters: Mapping[str, float]) -> float:
    """Money for one call's counters (a missing counter counts as 0; ``calls`` defaults to 1)."""
    if price is None:
        return 0.0
    return (
        counters.get("tokens_in", 0.0) / 1000 * price.per_1k_tokens_in
        + counters.get("tokens_out", 0.0) / 1000 * price.per_1k_tokens_out
        + counters.get("audio_seconds", 0.0) / 60 * price.per_audio_minute
        + counters.get("calls", 1.0) * price.per_call
    )


def model_of(answer: Any) -> str | None:
    """The model an answer names (``ChatResult.model``, ``Embeddings.model``, or a ``model`` key)."""
    if isinstance(answer, Mapping):
        value = answer.get("model")
    else:
        value = getattr(answer, "model", None)
    return value if isinstance(value, str) else None


def tokens_of(counters: Mapping[str, float]) -> float:
    """Tokens in and out: what a provider limited in tokens per interval counts."""
    return counters.get("tokens_in", 0.0) + counters.get("tokens_out", 0.0)


def priced(
    prices: Mapping[str, Mapping[str, Price]], provider: str, model: str | None, counters: Mapping[str, float]
) -> dict[str, float]:
    """``counters`` with their ``cost`` added (when the provider is priced and the counters carry none)."""
    out = dict(counters)
    if "cost" not in out:
        price = price_for(prices, provider, model)
        if price is not None:
            out["cost"] = cost_of(price, out)
    return out


def rounded(usage: Any, digits: int = 6) -> Any:
    """``usage`` with floats rounded for display (sums of prices drift in the last digits)."""
    if isinstance(usage, Mapping):
        return {k: rounded(v, digits) for k, v in usage.items()}
    if isinstance(usage, float):
        return round(usage, digits)
    if dataclasses.is_dataclass(usage) and not isinstance(usage, type):
        return rounded(dataclasses.asdict(usage), digits)
    return usage


__all__ = ["COUNTERS", "cost_of", "model_of", "price_for", "priced", "rounded", "tokens_of"]
