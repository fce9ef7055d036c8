"""Helpers for the audio tests: the API with a worker in process, submitting recordings, sample audio."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import workers

from ingestd.api.app import create_app
from ingestd.pipeline import Pipeline
from ingestd.pipelines import audio, build_pipelines
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MEMO = (EXAMPLES / "voice-memo.txt").read_text().strip()
MEETING = (EXAMPLES / "team-meeting.txt").read_text().split("\n")
FAST: dict[str, Any] = {**workers.FAST_WORKER, "shutdown_grace_seconds": 0.5}
CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
    ".s16le": "application/octet-stream",
}


def fast_settings(url: str, **overrides: Any) -> Settings:
    """FAST, but a 30 s lease: these settings run in-process workers, which no test kills, and FAST's 2 s lease ran
    out on a loaded machine (late heartbeats), so that a job ran again and paid its calls in flight twice."""
    return workers.fast_settings(url, **{**FAST, "lease_seconds": 30.0, **overrides})


@asynccontextmanager
async def api(
    store: JobStore, settings: Settings, pipelines: dict[str, Pipeline] | None = None, *, worker: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API with a worker in the same process, driven through ``httpx.ASGITransport``.

    Without ``pipelines``: every registered pipeline, with the audio pipeline's providers built here so that
    their HTTP connections are closed at the end (a test's event loop ends with it).
    """
    providers = None
    if pipelines is None:
        providers = audio.default_providers(settings)
        pipelines = {**build_pipelines(settings), "audio": audio.build(settings, providers)}
    app = create_app(settings, store=store, pipelines=pipelines, run_worker=worker)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test") as client:
                yield client
    finally:
        if providers is not None:
            await providers.aclose()


async def submit(
    client: httpx.AsyncClient,
    files: list[tuple[str, bytes]],
    options: dict[str, Any] | None = None,
    meta: dict[str, dict[str, Any]] | None = None,
    content_types: dict[str, str] | None = None,
) -> str:
    """Submit recordings (name, bytes) to the audio pipeline; returns the job id."""
    types = content_types or {}
    parts = [("files", (name, data, types.get(name, _type_of(name)))) for name, data in files]
    form = {"input": json.dumps(options or {})}
    for name, value in (meta or {}).items():
        form[f"meta.{name}"] = json.dumps(value)
    response = await client.post("/v1/pipelines/audio/jobs", data=form, files=parts)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _type_of(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


async def wait_job(client: httpx.AsyncClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the job until it is terminal; returns the job as the API shows it."""
    return await workers.job_via_api(client, job_id, timeout, interval=0.05)


async def result_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def pcm16k(name: str) -> np.ndarray:
    """An example decoded to 16 kHz mono int16 with PyAV (to make other formats from it)."""
    out: list[np.ndarray] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    with av.open(str(EXAMPLES / name)) as container:
        for frame in container.decode(audio=0):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype("<i2")


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def words(text: str) -> list[str]:
    return [w.strip(".,!?'\"").lower() for w in text.split() if w.strip(".,!?'\"")]


def word_recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words the hypothesis contains (order-free, a loose accuracy floor)."""
    ref, hyp = words(reference), set(words(hypothesis))
    return sum(w in hyp for w in ref) / len(ref)
