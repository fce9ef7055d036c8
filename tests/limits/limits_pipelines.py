"""A pipeline for the limits tests, loaded by worker subprocesses through ``Settings.pipeline_modules``
(``limits_pipelines:PIPELINES``): each job embeds ``calls`` texts at the provider simulator, one provider call per
``map`` item, through ``ctx.call`` (so through the fleet-wide limiter)."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline
from ingestd.providers.registry import Providers, build_providers
from ingestd.settings import Settings


class EmbedInput(BaseModel):
    calls: int = 6
    concurrency: int = 6


@cache
def providers() -> Providers:
    return build_providers(Settings())  # the simulator's URLs come from INGESTD_* variables


async def run_embed(ctx: Context, inp: EmbedInput) -> JSON:
    embedder = providers().embedder

    async def one(index: int, _item: int) -> int:
        text = f"{ctx.job.id} text {index}"
        answer = await ctx.call(embedder.name, lambda: embedder.embed([text], request_key=f"{ctx.job.id}:{index}"))
        return len(answer.vectors)

    done = await ctx.map("embed", list(range(inp.calls)), one, concurrency=inp.concurrency)
    return {"embedded": sum(done.values()), "failed": len(done.failed)}


PIPELINES = [Pipeline(name="sim-embed", input_model=EmbedInput, run=run_embed)]  # type: ignore[arg-type]
