"""Synthetic audio for the provider tests (importable: this directory is on sys.path)."""

from __future__ import annotations

import numpy as np

RATE = 16_000


def bursts(pattern: list[tuple[float, bool]], *, amplitude: int = 8000) -> bytes:
    """16 kHz mono s16le PCM: for each (seconds, loud) a 220 Hz tone or silence."""
    parts = []
    for seconds, loud in pattern:
        t = np.arange(int(seconds * RATE)) / RATE
        tone = np.sin(2 * np.pi * 220 * t) * (amplitude if loud else 0)
        parts.append(tone.astype("<i2"))
    return np.concatenate(parts).tobytes() if parts else b""
