"""Pipelines whose every step calls the provider simulator, keyed by job and step.

Loaded by the chaos tests, ``bench/replay.py`` and ``bench/chaos.py`` through
``INGESTD_PIPELINE_MODULES='["ingestd.testing.sim_pipelines:build"]'`` (``processes.bench_env``). Each provider
call carries ``X-Request-Key: <job id>:<step key>``, so the simulator's per-key counters show how often each step
really ran.

``simaudio`` mirrors the wearable's audio-sync work: ``decode`` (local, a sleep proportional to the upload size),
``vad`` (the hosted VAD), then per 30 s speech segment ``transcribe[i]`` (Deepgram) and ``structure[i]`` (a chat
completion with a JSON schema). The simulator is told how long a 30 s segment takes (``SEGMENT_ROUTES``) and is
sent a tiny silent clip, so a benchmark does not ship hundreds of megabytes of PCM through loopback.
The same functions serve the synchronous endpoint of the replay, so both sides make exactly the same calls.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
from pydantic import BaseModel, Field

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline
from ingestd.settings import Settings

SEGMENT_SECONDS = 30.0
DECODE_SECONDS_PER_MB = 0.3  # PyAV to 16 kHz mono, roughly, on one core
CLIP = b"\x00\x00" * 4000  # 0.25 s of 16 kHz s16le silence
# Latency of one call for a 30 s segment (Deepgram: 0.25 s + 0.1 s per audio second), chat as configured.
SEGMENT_ROUTES: dict[str, Any] = {
    "deepgram": {"median_seconds": 3.25, "p95_seconds": 6.0, "per_audio_second": 0.0},
    "vad": {"median_seconds": 0.3, "p95_seconds": 0.6, "per_audio_second": 0.0},
}
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "overview": {"type": "string"}},
    "required": ["title", "overview"],
}


class SimAudioInput(BaseModel):
    """One upload: how big, how much speech, and the benchmark's time scale."""

    megabytes: float = Field(default=4.0, ge=0)
    speech_seconds: float = Field(default=60.0, ge=0)
    time_scale: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=4, ge=1)


def segments(speech_seconds: float) -> int:
    """How many 30 s segments the speech splits into."""
    return max(1, math.ceil(speech_seconds / SEGMENT_SECONDS))


def calls_needed(speech_seconds: float) -> int:
    """Provider calls one upload needs: one VAD call, then a transcription and a chat call per segment."""
    return 1 + 2 * segments(speech_seconds)


class SimCalls:
    """The provider calls of one upload, against the simulator at ``base`` (its root URL)."""

    def __init__(self, client: httpx.AsyncClient, base: str, key_prefix: str) -> None:
        self.client, self.base, self.prefix = client, base.rstrip("/"), key_prefix

    def _headers(self, step: str) -> dict[str, str]:
        return {"Authorization": "Bearer sim-key", "X-Request-Key": f"{self.prefix}:{step}"}

    async def vad(self) -> int:
        url = f"{self.base}/v1/vad?sample_rate=16000"
        response = await self.client.post(url, content=CLIP, headers=self._headers("vad"))
        response.raise_for_status()
        return len(CLIP)

    async def transcribe(self, index: int) -> str:
        url = f"{self.base}/v1/listen?encoding=linear16&sample_rate=16000"
        response = await self.client.post(url, content=CLIP, headers=self._headers(f"transcribe[{index}]"))
        response.raise_for_status()
        return str(response.json()["results"]["channels"][0]["alternatives"][0]["transcript"])

    async def structure(self, index: int, transcript: str) -> JSON:
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": transcript or "(silence)"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "conversation", "schema": SCHEMA}},
        }
        response = await self.client.post(
            f"{self.base}/v1/chat/completions", json=body, headers=self._headers(f"structure[{index}]")
        )
        response.raise_for_status()
        return {"segment": index, "answer": response.json()["choices"][0]["message"]["content"][:80]}


async def decode(inp: SimAudioInput) -> float:
    """Stand-in for decoding the upload: CPU time proportional to its size (time-scaled)."""
    await asyncio.sleep(inp.megabytes * DECODE_SECONDS_PER_MB * inp.time_scale)
    return inp.speech_seconds


def sim_root(settings: Settings) -> str:
    """The simulator's root URL, from the Deepgram URL that ``ingestd.sim.testing.provider_env`` sets."""
    return settings.deepgram_url.rstrip("/")


def build(settings: Settings) -> list[Pipeline]:
    """The ``simaudio`` pipeline, calling the simulator named in ``settings``."""
    base = sim_root(settings)

    async def run(ctx: Context, inp: SimAudioInput) -> JSON:
        async with httpx.AsyncClient(timeout=120) as client:
            calls = SimCalls(client, base, ctx.job.id)
            await ctx.step("decode", lambda: decode(inp))
            await ctx.step("vad", lambda: ctx.call("hosted_vad", calls.vad))
            items = list(range(segments(inp.speech_seconds)))

            async def transcribe(i: int, _item: int) -> str:
                return await ctx.call("deepgram", lambda: calls.transcribe(i))

            texts = await ctx.map("transcribe", items, transcribe, concurrency=inp.concurrency)

            async def structure(i: int, text: str) -> JSON:
                return await ctx.call("openai", lambda: calls.structure(i, text))

            done = await ctx.map("structure", texts.values(), structure, concurrency=inp.concurrency)
            return {"segments": len(items), "conversations": len(done.ok), "failed": sorted(done.failed)}

    return [
        Pipeline(
            name="simaudio",
            input_model=SimAudioInput,
            run=run,
            description="The audio-sync stages against the provider simulator (benchmarks only).",
            unit="audio_seconds",
            units=lambda inp: float(inp.speech_seconds),
        )
    ]
