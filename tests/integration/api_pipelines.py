"""Test pipelines for the API tests (also loaded by the acceptance servers through ``INGESTD_PIPELINE_MODULES``).

``checksum``: takes files; its result lists each file's name, size and SHA-256 as the worker read it back.
``gated``: a map of ``items``; the items listed in ``open`` finish at once, the others wait until the file
``gate`` exists (a test holds a job mid-map, then lets it go). ``fail_stage`` fails a plain step for good;
``overlap`` runs a second map alongside, as the audio pipeline overlaps ``transcribe`` and ``structure``.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from pydantic import BaseModel

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline


class ChecksumInput(BaseModel):
    label: str = ""


async def run_checksum(ctx: Context, inp: ChecksumInput) -> JSON:
    async def digest() -> list[JSON]:
        out: list[JSON] = []
        for f in ctx.job.files:
            data = Path(await ctx.file_path(f)).read_bytes()
            out.append({"name": f.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "meta": f.meta})
        return out

    return {"label": inp.label, "files": await ctx.step("digest", digest)}


CHECKSUM = Pipeline(
    name="checksum", input_model=ChecksumInput, run=run_checksum, accepts_files=True, description="hashes files"
)


class GatedInput(BaseModel):
    items: int = 4
    open: list[int] = []
    gate: str = ""
    seconds: float = 0.0  # how long each open item takes
    overlap: bool = False  # also map "after", started while "work" runs and waiting for the gate (audio's shape)
    fail_stage: bool = False


async def run_gated(ctx: Context, inp: GatedInput) -> JSON:
    async def work(index: int, _item: int) -> int:
        if index in inp.open:
            await asyncio.sleep(inp.seconds)
        while index not in inp.open and not Path(inp.gate).exists():
            await asyncio.sleep(0.02)
        return index

    async def check() -> None:
        raise errors.PermanentError("the recording is not audio")

    if inp.fail_stage:
        await ctx.step("check", check)

    async def after(index: int, _item: int) -> int:
        while not Path(inp.gate).exists():
            await asyncio.sleep(0.02)
        return index

    maps = [ctx.map("work", list(range(inp.items)), work, concurrency=inp.items)]
    if inp.overlap:
        maps.append(ctx.map("after", [0], after))
    done, *_ = await asyncio.gather(*maps)
    return {"ok": sorted(done.ok)}


GATED = Pipeline(name="gated", input_model=GatedInput, run=run_gated, description="a map held by a gate file")
PIPELINES = [CHECKSUM, GATED]
