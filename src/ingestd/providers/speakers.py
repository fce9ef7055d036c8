"""Offline speaker embeddings: the GE2E voice encoder whose weights ship in the ``resemblyzer`` wheel.

The network (a 3-layer LSTM over 40-band mel frames, then a linear layer, ReLU and L2 norm: 256 numbers per
window) is built here and loaded from the wheel's ``pretrained.pt``; the ``resemblyzer`` package itself is never
imported (its ``__init__`` imports ``webrtcvad``, which needs ``pkg_resources``). The mel frames are librosa's,
as the encoder was trained on: 25 ms windows every 10 ms, computed once per speech span and sliced into its
windows. Each span's audio is first brought to -30 dBFS, as resemblyzer's own preprocessing does, so a quiet and
a loud turn of one voice embed alike.

The model is loaded once per process, lazily and under a lock; embedding runs in the caller's thread (the
pipeline calls it through ``Context.run_cpu`` or a thread).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingestd import errors
from ingestd.providers.base import SAMPLE_RATE

FRAME_SECONDS = 0.01  # the mel hop
MEL_BANDS = 40
TARGET_DBFS = -30.0
_model: Any = None
_model_lock = threading.Lock()


@dataclass(frozen=True)
class SpeakerWindows:
    """Embeddings of windows of one track: ``spans[i]`` = (start, end) seconds of ``vectors[i]`` (unit length)."""

    spans: list[tuple[float, float]]
    vectors: np.ndarray  # (n, 256) float32


def weights_path() -> str:
    """``pretrained.pt`` inside the installed ``resemblyzer`` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise errors.PermanentError("the speaker model is not installed (pip install resemblyzer)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "pretrained.pt")
    if not os.path.exists(path):
        raise errors.PermanentError(f"the speaker model's weights are missing ({path})")
    return path


def _build() -> Any:
    import torch
    from torch import nn

    class VoiceEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(MEL_BANDS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)
            self.relu = nn.ReLU()

        def forward(self, mels: Any) -> Any:
            _, (hidden, _) = self.lstm(mels)
            raw = self.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)

    model = VoiceEncoder()
    state = torch.load(weights_path(), map_location="cpu", weights_only=False)["model_state"]
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")}, strict=True)
    return model.eval()


def load_model() -> Any:
    """The voice encoder, loaded once per process."""
    global _model
    with _model_lock:
        if _model is None:
            _model = _build()
        return _model


def _mel(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power frames of 16 kHz float audio, after bringing it to -30 dBFS."""
    import librosa

    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1e-9
    scaled = audio * (10 ** (TARGET_DBFS / 20) / rms)
    mel = librosa.feature.melspectrogram(
        y=scaled.astype(np.float32), sr=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=MEL_BANDS
    )
    return np.asarray(mel.astype(np.float32).T)


class VoiceEncoder:
    """Speaker embeddings of sliding windows over speech.

    Args:
        window: seconds per window (the encoder was trained on 1.6 s).
        hop: seconds between window starts.
        min_window: spans shorter than this get no window (too little voice to tell who speaks).
        threads: torch threads (0: leave torch's default).
    """

    name = "resemblyzer-ge2e"

    def __init__(self, window: float = 1.6, hop: float = 0.75, min_window: float = 0.5, threads: int = 0) -> None:
        self.window, self.hop, self.min_window, self.threads = window, hop, min_window, threads

    def windows(self, start: float, end: float) -> list[tuple[float, float]]:
        """Windows over one speech span: full windows every ``hop``, the last one flush with the span's end."""
        if end - start < self.min_window:
            return []
        if end - start <= self.window:
            return [(start, end)]
        count = int(np.ceil((end - start - self.window) / self.hop)) + 1
        starts = [min(start + i * self.hop, end - self.window) for i in range(count)]
        return [(round(s, 3), round(s + self.window, 3)) for s in starts]

    def embed(self, audio: np.ndarray, spans: list[tuple[float, float]]) -> SpeakerWindows:
        """Embed the windows over ``spans`` (seconds) of ``audio`` (16 kHz float32 mono). The mel frames of a
        span are computed once and sliced into its windows."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        windows: list[tuple[float, float]] = []
        mels: list[np.ndarray] = []
        for start, end in spans:
            own = self.windows(start, end)
            if not own:
                continue
            mel = _mel(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
            for s, e in own:
                first = round((s - start) / FRAME_SECONDS)
                mels.append(mel[first : first + max(1, round((e - s) / FRAME_SECONDS))])
                windows.append((s, e))
        return SpeakerWindows(windows, self._vectors(mels))

    def _vectors(self, mels: list[np.ndarray]) -> np.ndarray:
        import torch

        vectors = np.zeros((len(mels), 256), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, mel in enumerate(mels):
            by_length.setdefault(len(mel), []).append(i)
        model = load_model()
        with torch.inference_mode():
            for indices in by_length.values():  # one batch per window length (only short spans differ)
                batch = torch.from_numpy(np.stack([mels[i] for i in indices]))
                vectors[indices] = model(batch).numpy()
        return vectors


__all__ = ["SpeakerWindows", "VoiceEncoder", "load_model", "weights_path"]
