"""Offline voice activity detection: Silero VAD v6 (ONNX) on onnxruntime, no torch.

The model file is the one ``faster-whisper`` ships in its assets (``silero_vad_v6.onnx``), so it costs no extra
package and no download. The model reads 512-sample windows of 16 kHz audio, each preceded by the last 64
samples of the window before (its "context"), and carries an LSTM state (``h``, ``c``) from window to window;
it treats the first axis of its input as time, so a whole chunk of windows runs in one ``session.run``.

``SileroVAD.detect`` streams the PCM file chunk by chunk (30 s at a time by default), so hours of audio never sit
in memory, then turns per-window speech probabilities into spans with hysteresis (speech starts above
``threshold``, ends after ``min_silence_seconds`` below ``threshold - 0.15``), drops spans shorter than
``min_speech_seconds`` and pads the rest by ``pad_seconds`` on each side.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingestd.providers.base import SAMPLE_RATE, SpeechSpan

WINDOW = 512  # samples per model step at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model sees before each window
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def default_model_path() -> str:
    """The Silero v6 ONNX file shipped inside faster-whisper."""
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


def _session(path: str) -> Any:
    """One onnxruntime session per model file and process (``InferenceSession.run`` is thread-safe)."""
    with _models_lock:
        if path not in _models:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            # One thread per call: several files are analysed at once, and the model is tiny.
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 4
            _models[path] = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)
        return _models[path]


def speech_probabilities(pcm_path: str, *, model_path: str | None = None, chunk_seconds: float = 30.0) -> np.ndarray:
    """Speech probability of every 32 ms window of a 16 kHz mono s16le file, read ``chunk_seconds`` at a time."""
    return np.concatenate(list(_probability_chunks(pcm_path, model_path or default_model_path(), chunk_seconds)))


def _probability_chunks(pcm_path: str, model_path: str, chunk_seconds: float) -> Iterator[np.ndarray]:
    session = _session(model_path)
    windows_per_chunk = max(1, int(chunk_seconds * SAMPLE_RATE) // WINDOW)
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    context = np.zeros(CONTEXT, dtype=np.float32)
    yield np.zeros(0, dtype=np.float32)  # so that an empty file gives an empty array
    with open(pcm_path, "rb") as f:
        while raw := f.read(windows_per_chunk * WINDOW * 2):
            audio = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
            audio = np.pad(audio, (0, -len(audio) % WINDOW))  # the last window, zero-filled
            windows = audio.reshape(-1, WINDOW)
            contexts = np.vstack([context, windows[:-1, -CONTEXT:]])
            batch = np.concatenate([contexts, windows], axis=1)
            probs, h, c = session.run(None, {"input": batch, "h": h, "c": c})
            context = windows[-1, -CONTEXT:].copy()
            yield np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class SpanRules:
    """How window probabilities become speech spans."""

    threshold: float = 0.5
    min_speech_seconds: float = 0.25
    min_silence_seconds: float = 0.6
    pad_seconds: float = 0.2


# A recording where the usual rules hear nothing gets a second look with these: a lone short word on a phone
# line ("a", "is", "hours" of the asterisk prompts) peaks at 0.4-0.6 for under 0.25 s and was dropped entirely.
FAINT = SpanRules(threshold=0.3, min_speech_seconds=0.0, pad_seconds=0.5)


def spans_from_probabilities(probs: np.ndarray, rules: SpanRules, total_seconds: float) -> list[SpeechSpan]:
    """Speech spans (seconds) from per-window probabilities, with hysteresis, minimum lengths and padding."""
    step = WINDOW / SAMPLE_RATE
    low = max(rules.threshold - 0.15, 0.01)
    raw: list[tuple[float, float]] = []
    start: float | None = None
    silent_since: float | None = None
    for i, p in enumerate(probs.tolist()):
        t = i * step
        if start is None:
            if p >= rules.threshold:
                start, silent_since = t, None
            continue
        if p >= low:
            silent_since = None  # between the thresholds, speech goes on once started
        elif silent_since is None:
            silent_since = t
        elif t - silent_since >= rules.min_silence_seconds:
            raw.append((start, silent_since))
            start, silent_since = None, None
    if start is not None:
        raw.append((start, silent_since if silent_since is not None else len(probs) * step))
    return _pad([s for s in raw if s[1] - s[0] >= rules.min_speech_seconds], rules.pad_seconds, total_seconds)


def _pad(spans: list[tuple[float, float]], pad: float, total: float) -> list[SpeechSpan]:
    out: list[SpeechSpan] = []
    for i, (start, end) in enumerate(spans):
        lo = max(0.0, start - pad)
        hi = min(total, end + pad)
        if i + 1 < len(spans):
            hi = min(hi, (end + spans[i + 1][0]) / 2)  # padding never makes neighbours overlap
        if out:
            lo = max(lo, out[-1].end)
        out.append(SpeechSpan(round(lo, 3), round(max(lo, hi), 3)))
    return out


class SileroVAD:
    """``VoiceActivityDetector`` on the Silero v6 ONNX model, run in a thread (never on the event loop).

    Args:
        rules: thresholds, minimum durations and padding.
        model_path: the ONNX file (default: faster-whisper's copy).
        chunk_seconds: how much audio is read and scored at once.
    """

    name = "silero-vad-v6"

    def __init__(
        self, rules: SpanRules | None = None, *, model_path: str | None = None, chunk_seconds: float = 30.0
    ) -> None:
        self.rules = rules or SpanRules()
        self.model_path = model_path or default_model_path()
        self.chunk_seconds = chunk_seconds

    def detect_sync(self, pcm_path: str) -> list[SpeechSpan]:
        """Speech spans of a 16 kHz mono s16le file (blocking; the async ``detect`` runs this in a thread)."""
        probs = speech_probabilities(pcm_path, model_path=self.model_path, chunk_seconds=self.chunk_seconds)
        total = os.path.getsize(pcm_path) / 2 / SAMPLE_RATE
        return spans_from_probabilities(probs, self.rules, total) or spans_from_probabilities(probs, FAINT, total)

    async def detect(self, pcm_path: str, *, request_key: str | None = None) -> list[SpeechSpan]:
        """Speech spans of a raw PCM file (16 kHz mono s16le), read in a streaming way. ``request_key`` is
        accepted (and unused) so that callers treat local and hosted detectors alike."""
        return await asyncio.to_thread(self.detect_sync, pcm_path)


__all__ = ["SileroVAD", "SpanRules", "default_model_path", "spans_from_probabilities", "speech_probabilities"]
