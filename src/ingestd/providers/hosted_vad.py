"""A hosted voice-activity detector over HTTP: ``POST {base_url}/v1/vad`` with the raw PCM as the body.

The request body is the PCM file streamed from disk (hours of audio never sit in memory); the answer is
``{"segments": [{"start": s, "end": s}, ...]}`` in seconds. The simulator serves this shape; a team with its own
VAD service puts it behind the same contract.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
import httpx

from ingestd.providers import http
from ingestd.providers.base import SAMPLE_RATE, SpeechSpan

CHUNK_BYTES = 256 * 1024


class HostedVAD:
    """``VoiceActivityDetector`` over a hosted endpoint.

    Args:
        base_url: the service's base URL (the client appends ``/v1/vad``).
        api_key: sent as a Bearer token when given.
        timeout: seconds for one call.
        client: an optional shared ``httpx.AsyncClient``.
    """

    name = "hosted-vad"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.http = http.ProviderHTTP(self.name, base_url, api_key, timeout=timeout, client=client)

    async def detect(self, pcm_path: str, *, request_key: str | None = None) -> list[SpeechSpan]:
        """Speech spans of a 16 kHz mono s16le file."""
        size = os.path.getsize(pcm_path)
        response = await self.http.post(
            "/v1/vad",
            request_key=request_key,
            params={"sample_rate": str(SAMPLE_RATE)},
            content=_read_chunks(pcm_path),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        body = self.http.json(response)
        try:
            return [SpeechSpan(float(s["start"]), float(s["end"])) for s in body["segments"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.http.malformed(f"no segments[].start/end ({exc!r})") from exc

    async def aclose(self) -> None:
        await self.http.aclose()


async def _read_chunks(path: str) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(CHUNK_BYTES):
            yield chunk
