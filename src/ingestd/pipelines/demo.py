"""The ``demo`` pipeline (for tests, benchmarks and anyone trying ingestd) and ``noop`` (for benchmarks).

``demo``: ``prepare`` → ``work[i]`` for each item (each sleeps ``seconds``; the indexes in ``fail`` fail for
good) → ``collect``; the result is ``{"ok": [indexes], "failed": [indexes]}`` and the job ends ``partial`` when
``fail`` names any item. ``noop`` returns ``{}`` at once and writes no checkpoint.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class DemoInput(BaseModel):
    """Input of the ``demo`` pipeline."""

    items: int = Field(default=3, ge=0, le=100_000, description="how many work items to fan out")
    seconds: float = Field(default=1.0, ge=0, le=3600, description="how long each item sleeps")
    fail: list[int] = Field(default_factory=list, description="item indexes that fail permanently")
    concurrency: int = Field(default=8, ge=1, le=1000, description="items worked on at once")


async def run_demo(ctx: Context, inp: DemoInput) -> JSON:
    """prepare → work[i] → collect."""

    async def prepare() -> list[int]:
        return list(range(inp.items))

    async def work(index: int, _item: int) -> int:
        await asyncio.sleep(inp.seconds)
        if index in inp.fail:
            raise errors.PermanentError(f"item {index} was asked to fail")
        return index

    items = await ctx.step("prepare", prepare)
    done = await ctx.map("work", items, work, concurrency=inp.concurrency)

    async def collect() -> JSON:
        return {"ok": sorted(done.ok), "failed": sorted(done.failed)}

    return await ctx.step("collect", collect)


class NoopInput(BaseModel):
    """Input of the ``noop`` pipeline: anything (ignored)."""

    model_config = {"extra": "allow"}


async def run_noop(_ctx: Context, _inp: NoopInput) -> JSON:
    """Nothing at all: measures the engine's own overhead."""
    return {}


DEMO = Pipeline(
    name="demo",
    input_model=DemoInput,
    run=run_demo,
    description="Sleeps `seconds` for each of `items` work items, failing those listed in `fail`.",
    unit="items",
    units=lambda inp: float(inp.items),
)

NOOP = Pipeline(
    name="noop",
    input_model=NoopInput,
    run=run_noop,
    description="Does nothing and succeeds at once (for benchmarks and smoke tests).",
    unit="jobs",
)

__all__ = ["DEMO", "NOOP", "DemoInput", "NoopInput", "run_demo", "run_noop"]
