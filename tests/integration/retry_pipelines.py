"""A test pipeline for retries: ``flaky`` is ``demo`` whose items listed in ``fail`` fail for good while the file
``marker`` exists (delete it, and a retry succeeds)."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class FlakyInput(BaseModel):
    items: int = Field(default=4, ge=0, le=100)
    fail: list[int] = Field(default_factory=list)
    marker: str = ""


async def run_flaky(ctx: Context, inp: FlakyInput) -> JSON:
    async def prepare() -> list[int]:
        return list(range(inp.items))

    async def work(index: int, _item: int) -> int:
        if index in inp.fail and os.path.exists(inp.marker):
            raise errors.PermanentError(f"item {index} fails while {inp.marker} exists")
        return index

    items = await ctx.step("prepare", prepare)
    done = await ctx.map("work", items, work)

    async def collect() -> JSON:
        return {"ok": sorted(done.ok), "failed": sorted(done.failed)}

    return await ctx.step("collect", collect)


PIPELINES = [
    Pipeline(name="flaky", input_model=FlakyInput, run=run_flaky, description="demo, failing while a file exists")
]
