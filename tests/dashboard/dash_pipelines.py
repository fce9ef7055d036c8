"""Pipelines the dashboard tests register (``INGESTD_PIPELINE_MODULES='["dash_pipelines:PIPELINES"]'``): one
whose step fails twice before it succeeds (retry marks) and one whose items queue for a provider limited to one
call at a time (limiter-wait marks)."""

from __future__ import annotations

import asyncio
from collections import Counter

from pydantic import BaseModel

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline, RetryPolicy

LIMITED_PROVIDER = "slowapi"  # the tests' server limits it to 1 concurrent call
_failures: Counter[str] = Counter()  # per job: the worker runs in the server process, so this persists


class FlakyInput(BaseModel):
    failures: int = 2


async def run_flaky(ctx: Context, inp: FlakyInput) -> JSON:
    async def fetch() -> str:
        if _failures[ctx.job.id] < inp.failures:
            _failures[ctx.job.id] += 1
            raise errors.TransientError(f"provider hiccup {_failures[ctx.job.id]}")
        return "fetched"

    return {"fetch": await ctx.step("fetch", fetch, retry=RetryPolicy(attempts=5, base_seconds=0.05))}


class LimitedInput(BaseModel):
    items: int = 3
    seconds: float = 0.3


async def run_limited(ctx: Context, inp: LimitedInput) -> JSON:
    async def call(index: int, _item: int) -> int:
        await ctx.call(LIMITED_PROVIDER, lambda: asyncio.sleep(inp.seconds))
        return index

    done = await ctx.map("call", list(range(inp.items)), call, concurrency=inp.items)
    return {"calls": len(done.ok)}


PIPELINES = [
    Pipeline(name="flaky", input_model=FlakyInput, run=run_flaky, description="dashboard tests: retries"),
    Pipeline(name="limited", input_model=LimitedInput, run=run_limited, description="dashboard tests: limits"),
]
