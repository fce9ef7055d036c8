"""Raw PCM → WAV for uploads to speech APIs that want a container (stdlib ``wave``)."""

from __future__ import annotations

import io
import wave

from ingestd.providers.base import SAMPLE_RATE

BYTES_PER_SECOND = SAMPLE_RATE * 2


def pcm_to_wav(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Wrap mono signed 16-bit little-endian PCM in a WAV header."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm[: len(pcm) - len(pcm) % 2])
    return buffer.getvalue()


def pcm_seconds(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration of mono s16le PCM."""
    return len(pcm) / 2 / sample_rate
