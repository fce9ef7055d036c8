"""A test pipeline for the webhook tests (``INGESTD_PIPELINE_MODULES=webhook_pipelines:PIPELINES``).

``hooked``: maps ``items`` items (``job.progress``), then waits for the file ``gate`` when one is named (so a
test can see a progress webhook arrive before the job ends), then fails for good when ``fail`` is set.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class HookedInput(BaseModel):
    items: int = 2
    gate: str = ""
    fail: bool = False


async def run_hooked(ctx: Context, inp: HookedInput) -> JSON:
    async def work(index: int, _item: int) -> int:
        return index

    async def wait_for_gate() -> None:
        while inp.gate and not Path(inp.gate).exists():
            await asyncio.sleep(0.02)

    async def check() -> None:
        raise errors.PermanentError("the recording is not audio")

    done = await ctx.map("work", list(range(inp.items)), work)
    await ctx.step("gate", wait_for_gate)
    if inp.fail:
        await ctx.step("check", check)
    return {"ok": sorted(done.ok)}


HOOKED = Pipeline(name="hooked", input_model=HookedInput, run=run_hooked, description="progress, a gate, a failure")
PIPELINES = [HOOKED]
