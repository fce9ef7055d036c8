"""Coalesced calls: each caller gets its own answer, batches hold at most ``limit`` calls, and a batch that fails
fails only its own calls."""

from __future__ import annotations

import asyncio

import pytest

from ingestd.providers.coalesce import Coalescer


async def test_calls_made_together_run_in_batches_of_at_most_limit() -> None:
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(run, limit=2)
    outcomes = await asyncio.gather(*(coalescer(i) for i in range(5)), return_exceptions=True)
    assert outcomes[0::2] == [0, 20, 40]
    assert [str(e) for e in outcomes[1::2]] == ["odd 1", "odd 3"]
    assert sorted(i for batch in batches for i in batch) == [0, 1, 2, 3, 4]
    assert max(len(batch) for batch in batches) == 2


async def test_a_batch_that_raises_fails_its_calls_only() -> None:
    def run(items: list[str]) -> list[str | Exception]:
        if "boom" in items:
            raise RuntimeError("the model crashed")
        return [s.upper() for s in items]

    coalescer: Coalescer[str, str] = Coalescer(run, limit=1)
    outcomes = await asyncio.gather(coalescer("boom"), coalescer("fine"), return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1] == "FINE"
    with pytest.raises(RuntimeError):
        await coalescer("boom")
    assert await coalescer("again") == "AGAIN"
