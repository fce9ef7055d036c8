"""Offline speaker embeddings: the GE2E voice encoder of ``resemblyzer`` 0.1.4, run in numpy (no torch).

The network is a 3-layer LSTM over 40-band mel power frames, then a linear layer, ReLU and L2 norm: 256 numbers
per window. Its weights and the mel filterbank it was trained with ship in ``providers/data/ge2e.npz`` (float32,
5.3 MB; exported once by ``bench/tools/export_ge2e.py``; Apache-2.0, see ``providers/data/NOTICE``). The mel
frames are librosa's ``melspectrogram`` defaults as resemblyzer computes them: 25 ms periodic-Hann windows every
10 ms, the signal zero-padded by half a window at both ends, |rfft|² through the filterbank. They are computed
once per speech span and sliced into its windows. Each span's audio is first brought to -30 dBFS, as
resemblyzer's own preprocessing does, so a quiet and a loud turn of one voice embed alike.

The network runs on onnxruntime by default: ``providers/data/ge2e.graph.onnx`` is the graph alone (three ONNX
``LSTM`` nodes, linear, ReLU, L2; under 1 kB, written by ``bench/tools/export_ge2e_onnx.py``), its weights given
as inputs from ``ge2e.npz``, so the weights ship once. It gives the numpy network's vectors within 1e-6 for
0.6 of its CPU time (6.3 vs 10.5 ms a 1.6 s window, one thread, 2 cores at load 10). The numpy network
(``encode``, ``runtime="numpy"``) stays as the reference the tests compare with resemblyzer's torch encoder: the
LSTM batched over windows of equal length, one matrix product per layer for the inputs of every step, then one
small product per step for the recurrence. Weights and session are loaded once per process, lazily and under a
lock; embedding runs in the caller's thread (the pipeline runs it in the speakers' child process).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ingestd import errors
from ingestd.providers.base import SAMPLE_RATE

FRAME_SECONDS = 0.01  # the mel hop
MEL_BANDS = 40
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
HIDDEN = 256
TARGET_DBFS = -30.0
BATCH = 64  # windows per LSTM pass: bounds memory (64 x 160 steps x 1024 gates x 4 bytes = 42 MB)
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
_model: Ge2e | None = None
_model_lock = threading.Lock()
_sessions: dict[int, tuple[Any, dict[str, np.ndarray]]] = {}  # threads -> (session, weights as its inputs)


@dataclass(frozen=True)
class SpeakerWindows:
    """Embeddings of windows of one track: ``spans[i]`` = (start, end) seconds of ``vectors[i]`` (unit length)."""

    spans: list[tuple[float, float]]
    vectors: np.ndarray  # (n, 256) float32


@dataclass(frozen=True)
class Ge2e:
    """The encoder's weights in float32, laid out for ``x @ w``; each layer's gate columns reordered from
    PyTorch's (input, forget, cell, output) to (input, forget, output, cell) so one sigmoid covers three."""

    layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (w_ih (in, 1024), w_hh (256, 1024), bias (1024,))
    linear_w: np.ndarray  # (256, 256)
    linear_b: np.ndarray  # (256,)
    mel_fb: np.ndarray  # (201, 40)


def _gates_ifoc(matrix: np.ndarray) -> np.ndarray:
    i, f, g, o = np.split(matrix.astype(np.float32), 4, axis=0)
    return np.ascontiguousarray(np.concatenate([i, f, o, g], axis=0).T)


def _load() -> Ge2e:
    path = resources.files("ingestd.providers") / "data" / "ge2e.npz"
    try:
        with path.open("rb") as handle, np.load(handle) as data:
            arrays = {name: data[name] for name in data.files}
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise errors.PermanentError(f"the speaker model's weights are missing or unreadable ({exc})") from exc
    layers = [
        (_gates_ifoc(arrays[f"w_ih{n}"]), _gates_ifoc(arrays[f"w_hh{n}"]), _gates_ifoc(arrays[f"b{n}"][:, None])[0])
        for n in range(3)
    ]
    linear_w = np.ascontiguousarray(arrays["linear_w"].astype(np.float32).T)
    return Ge2e(layers, linear_w, arrays["linear_b"].astype(np.float32), np.ascontiguousarray(arrays["mel_fb"].T))


def load_model() -> Ge2e:
    """The voice encoder's weights, loaded once per process."""
    global _model
    with _model_lock:
        if _model is None:
            _model = _load()
        return _model


def _onnx_gates(ifoc: np.ndarray) -> np.ndarray:
    """A ``Ge2e`` layer matrix (in, 1024), gate columns (i, f, o, c) → ONNX's (1, 1024, in), rows (i, o, f, c)."""
    i, f, o, c = np.split(ifoc, 4, axis=-1)
    return np.ascontiguousarray(np.concatenate([i, o, f, c], axis=-1).T[None])


def _session(threads: int) -> tuple[Any, dict[str, np.ndarray]]:
    """The onnxruntime session of the graph and the weights it takes as inputs, once per process and setting."""
    with _model_lock:
        if threads not in _sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.intra_op_num_threads = threads  # 0: onnxruntime's default
            options.inter_op_num_threads = 1
            graph = resources.files("ingestd.providers") / "data" / "ge2e.graph.onnx"
            session = ort.InferenceSession(graph.read_bytes(), options, providers=["CPUExecutionProvider"])
            _sessions[threads] = (session, {})
    session, feeds = _sessions[threads]
    if not feeds:
        feeds.update(_onnx_weights(load_model()))
    return session, feeds


def _onnx_weights(model: Ge2e) -> dict[str, np.ndarray]:
    feeds = {"linear_w": model.linear_w, "linear_b": model.linear_b}
    for n, (w_ih, w_hh, bias) in enumerate(model.layers):
        feeds[f"W{n}"], feeds[f"R{n}"] = _onnx_gates(w_ih), _onnx_gates(w_hh)
        feeds[f"B{n}"] = np.concatenate([_onnx_gates(bias[None])[:, :, 0], np.zeros((1, 4 * HIDDEN), np.float32)], 1)
    return feeds


def encode_onnx(mels: np.ndarray, threads: int = 1) -> np.ndarray:
    """``encode`` on onnxruntime: (n, frames, 40) mel windows → (n, 256) unit vectors."""
    session, feeds = _session(threads)
    (vectors,) = session.run(None, {"mels": np.ascontiguousarray(mels, dtype=np.float32), **feeds})
    return np.asarray(vectors, dtype=np.float32)


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power frames of 16 kHz float audio, after bringing it to -30 dBFS; one frame per 10 ms
    plus one (librosa's centred framing, zero padding)."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1e-9
    scaled = (audio * (10 ** (TARGET_DBFS / 20) / rms)).astype(np.float32)
    padded = np.pad(scaled, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP] * _WINDOW
    spectrum = np.fft.rfft(frames, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.asarray(power @ load_model().mel_fb, dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Sigmoid in place, as 0.5 + 0.5 tanh(x / 2): no overflow for large |x|."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _lstm_layer(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(n, t, in) → (n, t, 256): the hidden state after every step (zero initial state)."""
    n, steps, _ = x.shape
    inputs = (x.reshape(n * steps, -1) @ w_ih + bias).reshape(n, steps, 4 * HIDDEN)
    h = np.zeros((n, HIDDEN), dtype=np.float32)
    c = np.zeros((n, HIDDEN), dtype=np.float32)
    out = np.empty((n, steps, HIDDEN), dtype=np.float32)
    for step in range(steps):
        gates = inputs[:, step] + h @ w_hh
        _sigmoid(gates[:, : 3 * HIDDEN])
        np.tanh(gates[:, 3 * HIDDEN :], out=gates[:, 3 * HIDDEN :])
        c = gates[:, HIDDEN : 2 * HIDDEN] * c + gates[:, :HIDDEN] * gates[:, 3 * HIDDEN :]
        h = gates[:, 2 * HIDDEN : 3 * HIDDEN] * np.tanh(c)
        out[:, step] = h
    return out


def encode(mels: np.ndarray) -> np.ndarray:
    """(n, frames, 40) mel windows → (n, 256) unit vectors: the LSTM's last hidden state, linear, ReLU, L2."""
    model = load_model()
    x = mels.astype(np.float32)
    for w_ih, w_hh, bias in model.layers:
        x = _lstm_layer(x, w_ih, w_hh, bias)
    raw = np.maximum(x[:, -1] @ model.linear_w + model.linear_b, 0.0)
    return np.asarray(raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9), dtype=np.float32)


class VoiceEncoder:
    """Speaker embeddings of sliding windows over speech.

    Args:
        window: seconds per window (the encoder was trained on 1.6 s).
        hop: seconds between window starts.
        min_window: spans shorter than this get no window (too little voice to tell who speaks).
        threads: threads while embedding (0: the runtime's default, every core). One: the per-step products are
            small, and on 2 shared cores a second thread cost ~40 % more CPU for the same wall time. With numpy
            only the BLAS pool is limited, never OpenMP (CTranslate2's).
        runtime: ``"onnx"`` (onnxruntime) or ``"numpy"`` (the reference network, ``encode``).
    """

    name = "resemblyzer-ge2e"

    def __init__(
        self, window: float = 1.6, hop: float = 0.5, min_window: float = 0.5, threads: int = 1, runtime: str = "onnx"
    ) -> None:
        self.window, self.hop, self.min_window, self.threads = window, hop, min_window, threads
        self.runtime = runtime

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
        windows: list[tuple[float, float]] = []
        mels: list[np.ndarray] = []
        for start, end in spans:
            own = self.windows(start, end)
            if not own:
                continue
            mel = mel_frames(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
            for s, e in own:
                first = round((s - start) / FRAME_SECONDS)
                mels.append(mel[first : first + max(1, round((e - s) / FRAME_SECONDS))])
                windows.append((s, e))
        if not self.threads or self.runtime == "onnx":
            return SpeakerWindows(windows, self._vectors(mels))
        from threadpoolctl import threadpool_limits

        # numpy's BLAS only: an OpenMP limit reaches CTranslate2's thread pool too, and Whisper transcribing at
        # the same time (another thread: the speakers stage runs alongside transcription) would then decode on
        # one thread and give different words.
        with threadpool_limits(self.threads, user_api="blas"):
            return SpeakerWindows(windows, self._vectors(mels))

    def _vectors(self, mels: list[np.ndarray]) -> np.ndarray:
        vectors = np.zeros((len(mels), HIDDEN), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, mel in enumerate(mels):
            by_length.setdefault(len(mel), []).append(i)
        for indices in by_length.values():  # one batch per window length (only short spans differ)
            for first in range(0, len(indices), BATCH):
                chunk = indices[first : first + BATCH]
                batch = np.stack([mels[i] for i in chunk])
                vectors[chunk] = encode_onnx(batch, self.threads) if self.runtime == "onnx" else encode(batch)
        return vectors


__all__ = ["SpeakerWindows", "VoiceEncoder", "encode", "encode_onnx", "load_model", "mel_frames"]
