"""Pipelines the dashboard tests register (``INGESTD_PIPELINE_MODULES='["dash_pipelines:PIPELINES"]'``): one
whose step fails twice before it succeeds (retry marks) and one whose items queue for a provider limited to one
call at a time (limiter-wait marks), and one whose result has the shape of an audio job's (a two-speaker
conversation) without running speech models, for the transcript view."""

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


class TalkInput(BaseModel):
    lines: list[list[str]]  # [speaker, text] per turn, 3 s each


def _segment(index: int, speaker: str, text: str) -> JSON:
    return {"file": 0, "start": 3.0 * index, "end": 3.0 * index + 2.5, "speaker": speaker, "text": text}


async def run_talk(ctx: Context, inp: TalkInput) -> JSON:
    segments = [_segment(i, speaker, text) for i, (speaker, text) in enumerate(inp.lines)]
    conversation = {
        "index": 0,
        "title": "Planning call",
        "started_at": "2026-03-01T10:00:00+00:00",
        "speakers": list(dict.fromkeys(s["speaker"] for s in segments)),
        "transcript": segments,
        "utterances": [],
        "text": " ".join(s["text"] for s in segments),
    }
    return {"audio_seconds": 3.0 * len(segments), "conversations": [conversation]}


PIPELINES = [
    Pipeline(name="talk", input_model=TalkInput, run=run_talk, description="dashboard tests: an audio-shaped result"),
    Pipeline(name="flaky", input_model=FlakyInput, run=run_flaky, description="dashboard tests: retries"),
    Pipeline(name="limited", input_model=LimitedInput, run=run_limited, description="dashboard tests: limits"),
]
