"""The simulator's knobs: per-route latency, faults and contention, plus global time scale and seed.

Latency is lognormal, given by its median and 95th percentile (``p95_seconds == median_seconds`` makes it fixed,
which benchmarks that compute a critical path want). Routes that take audio add ``per_audio_second`` seconds per
second of audio to the median and scale the p95 by the same ratio. Under load each call's latency is multiplied by
``1 + contention_k * max(0, in_flight - contention_knee)`` where ``in_flight`` counts the route's calls in progress
when the call starts. Everything is multiplied by the global ``time_scale`` (0.01 makes a 4 s chat call take
40 ms), including the ``Retry-After`` the simulator sends.

The defaults are shaped like the real services (figures from their public latency reports and our incident
notes, rounded): Deepgram pre-recorded answers in about 0.25 s plus 0.1 s per second of audio; OpenAI-compatible
transcription (whisper-1) in 0.5 s plus 0.15 s per audio second; chat completions with structured output in
2-8 s (median 4 s, p95 8 s, a tail beyond); embeddings in 0.2 s; a hosted VAD in 50 ms plus 2 ms per audio
second.
"""

from __future__ import annotations

import math
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ROUTES = ("deepgram", "transcriptions", "chat", "embeddings", "vad")
_Z95 = 1.6448536269514722  # the standard normal's 95th percentile


class RouteConfig(BaseModel):
    """How one simulated route behaves."""

    model_config = ConfigDict(extra="forbid")

    median_seconds: float = Field(default=0.2, ge=0)
    p95_seconds: float = Field(default=0.5, ge=0)
    per_audio_second: float = Field(default=0.0, ge=0)
    max_seconds: float | None = Field(default=None, ge=0)
    error_rates: dict[int, float] = Field(default_factory=dict)  # HTTP status -> probability, e.g. {429: 0.05}
    hang_rate: float = Field(default=0.0, ge=0, le=1)  # the call never answers (until the client gives up)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)  # a 200 whose body is not the expected JSON
    retry_after_seconds: float = Field(default=1.0, ge=0)  # sent with 429 and 503, times time_scale
    fail_first_per_key: int = Field(default=0, ge=0)  # the first N calls per request key fail
    fail_first_status: int = 500
    contention_knee: int = Field(default=16, ge=0)
    contention_k: float = Field(default=0.1, ge=0)

    def latency(self, rng: random.Random, audio_seconds: float, in_flight: int) -> float:
        """Seconds this call takes, before the global time scale."""
        median = self.median_seconds + self.per_audio_second * audio_seconds
        ratio = self.p95_seconds / self.median_seconds if self.median_seconds > 0 else 1.0
        sigma = math.log(ratio) / _Z95 if ratio > 1 else 0.0
        seconds = median * math.exp(sigma * rng.gauss(0.0, 1.0)) if sigma else median
        seconds *= 1.0 + self.contention_k * max(0, in_flight - self.contention_knee)
        if self.max_seconds is not None:
            seconds = min(seconds, self.max_seconds)
        return seconds


def default_routes() -> dict[str, RouteConfig]:
    """Latencies shaped like the real services (see the module docstring)."""
    return {
        "deepgram": RouteConfig(median_seconds=0.25, p95_seconds=0.6, per_audio_second=0.1, max_seconds=600),
        "transcriptions": RouteConfig(median_seconds=0.5, p95_seconds=1.2, per_audio_second=0.15, max_seconds=600),
        "chat": RouteConfig(median_seconds=4.0, p95_seconds=8.0, max_seconds=60),
        "embeddings": RouteConfig(median_seconds=0.2, p95_seconds=0.5, max_seconds=10),
        "vad": RouteConfig(median_seconds=0.05, p95_seconds=0.15, per_audio_second=0.002, max_seconds=60),
    }


class SimConfig(BaseModel):
    """The whole simulator configuration (``GET``/``POST /_sim/config``)."""

    model_config = ConfigDict(extra="forbid")

    time_scale: float = Field(default=1.0, ge=0)
    seed: int = 0
    require_auth: bool = True  # answer 401 to a call without an Authorization header
    embedding_dimensions: int = Field(default=1536, ge=1)  # when the request names none
    words_per_second: float = Field(default=2.5, gt=0)  # of detected speech, in simulated transcripts
    vad_threshold_db: float = -40.0  # frames louder than this (dBFS) count as speech
    routes: dict[str, RouteConfig] = Field(default_factory=default_routes)

    def patched(self, patch: dict[str, Any]) -> SimConfig:
        """A copy with ``patch`` merged in: top-level fields replace, routes merge field by field.

        ``routes["*"]`` applies to every route. Unknown routes or fields raise ``pydantic.ValidationError`` (or
        ``ValueError``).
        """
        current = self.model_dump()
        routes_patch = dict(patch.get("routes") or {})
        everywhere = routes_patch.pop("*", None)
        unknown = set(routes_patch) - set(ROUTES)
        if unknown:
            raise ValueError(f"unknown routes {sorted(unknown)}; known: {list(ROUTES)}")
        for name in ROUTES:
            for part in (everywhere, routes_patch.get(name)):
                if part:
                    current["routes"][name].update(part)
        current.update({k: v for k, v in patch.items() if k != "routes"})
        return SimConfig.model_validate(current)
