"""The offline voice encoder (GE2E) on the repository's recordings: one voice's turns embed close, two voices'
far apart; onnxruntime (the default) gives the numpy network's vectors; and, where torch and the ``resemblyzer``
wheel are installed, the numpy encoder gives the embeddings of the original (librosa mel frames into
resemblyzer's PyTorch network) on the same windows."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest
from audio_support import pcm16k

from ingestd.providers.speakers import VoiceEncoder

RATE = 16_000
MEETING_VOICES = ["en-us", "en-us+f3", "en-us", "en-us+f3", "en-us", "en-us+f3"]  # examples/make_examples.sh


def _audio(name: str) -> np.ndarray:
    return pcm16k(name).astype(np.float32) / 32768


def _turns(audio: np.ndarray, gap: float = 0.5) -> list[tuple[float, float]]:
    """Stretches of 10 ms frames louder than -40 dBFS, joined across pauses shorter than ``gap`` seconds."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 0.01)
    breaks = np.flatnonzero(np.diff(loud) * 0.01 > gap)
    starts, ends = np.r_[loud[0], loud[breaks + 1]], np.r_[loud[breaks], loud[-1]] + 1
    return [(round(s * 0.01, 2), round(e * 0.01, 2)) for s, e in zip(starts, ends, strict=True)]


def _voice(encoder: VoiceEncoder, audio: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """One turn's voice: the mean of its windows' embeddings, unit length."""
    mean = encoder.embed(audio, [span]).vectors.mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


def test_one_voice_embeds_close_and_two_voices_far_apart() -> None:
    """The meeting's six turns (two espeak-ng voices, alternating) and the memo (the first voice, other words)."""
    meeting, memo = _audio("team-meeting.ogg"), _audio("voice-memo.flac")
    turns = _turns(meeting)
    assert len(turns) == len(MEETING_VOICES), turns
    encoder = VoiceEncoder()
    voices = np.stack([_voice(encoder, meeting, span) for span in turns])
    similarity = voices @ voices.T
    same = [similarity[i, j] for i in range(6) for j in range(i) if MEETING_VOICES[i] == MEETING_VOICES[j]]
    other = [similarity[i, j] for i in range(6) for j in range(i) if MEETING_VOICES[i] != MEETING_VOICES[j]]
    assert min(same) > max(other) + 0.1, (same, other)
    memo_voice = _voice(encoder, memo, _turns(memo, gap=1.0)[0])
    to_memo = voices @ memo_voice
    first = [i for i, v in enumerate(MEETING_VOICES) if v == "en-us"]
    assert min(to_memo[first]) > max(np.delete(to_memo, first)) + 0.1, to_memo


def _reference() -> tuple[Any, Any, str]:
    """torch, librosa and the wheel's ``pretrained.pt``, or a skip naming what is missing."""
    missing = [name for name in ("torch", "librosa", "resemblyzer") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the reference encoder needs {', '.join(missing)} (pip install -e '.[dev]')")
    import librosa
    import torch

    spec = importlib.util.find_spec("resemblyzer")  # found, not imported: its __init__ needs pkg_resources
    assert spec is not None and spec.submodule_search_locations
    return torch, librosa, os.path.join(next(iter(spec.submodule_search_locations)), "pretrained.pt")


def _melspectrogram(librosa: Any, y: np.ndarray) -> np.ndarray:
    """``librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=400, hop_length=160, n_mels=40)``, as its body reads
    (librosa 0.11): its power spectrogram and its mel filters, without importing ``librosa.feature``, whose
    imports compile librosa's pitch kernels with numba on a fresh venv (72 s instead of 27 s cold at load 8)."""
    import librosa.core.spectrum
    import librosa.filters

    spectrum = librosa.core.spectrum
    power, n_fft = spectrum._spectrogram(y=y, n_fft=400, hop_length=160, power=2.0, window="hann", pad_mode="constant")
    mel: np.ndarray = np.einsum("...ft,mf->...mt", power, librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=40))
    return mel


def _reference_vectors(audio: np.ndarray, spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(windows, original embeddings): resemblyzer's mel frames (its ``wav_to_mel_spectrogram``: librosa, 16 kHz,
    n_fft 400, hop 160, 40 bands) at -30 dBFS per span, into its network (``VoiceEncoder.forward``) in PyTorch."""
    torch, librosa, weights = _reference()
    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
    state = torch.load(weights, map_location="cpu", weights_only=False)["model_state"]
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
    out = []
    for start, end in spans:
        span = audio[int(start * RATE) : int(end * RATE)]
        span = span * (10 ** (-30 / 20) / np.sqrt(np.mean(span.astype(np.float64) ** 2)))
        mel = _melspectrogram(librosa, span.astype(np.float32))
        frames = mel.astype(np.float32).T
        for s, e in VoiceEncoder().windows(start, end):
            first = round((s - start) / 0.01)
            out.append(frames[first : first + round((e - s) / 0.01)])
    # One thread: the windows are tiny, and torch's default of one spinning thread a core made this loop 11x slower
    # on a loaded machine (34 s instead of 3.0 s at load 10, its imports aside: the test's 120 s timeout under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            vectors = []
            for window in out:  # one at a time: windows of short spans differ in length
                _, (hidden, _) = lstm(torch.from_numpy(window[None]))
                raw = torch.relu(linear(hidden[-1]))
                vectors.append((raw / torch.norm(raw, dim=1, keepdim=True)).numpy()[0])
    finally:
        torch.set_num_threads(threads)
    return np.array([len(w) for w in out]), np.stack(vectors)


def test_the_numpy_encoder_matches_the_original() -> None:
    """Every window of the meeting's turns (and a short turn: one window under 1.6 s): cosine >= 0.999."""
    meeting = _audio("team-meeting.ogg")
    spans = [*_turns(meeting), (1.2, 2.0)]
    lengths, expected = _reference_vectors(meeting, spans)
    got = VoiceEncoder().embed(meeting, spans)
    assert len(got.spans) == len(expected) and 80 in lengths
    cosines = np.sum(got.vectors * expected, axis=1)
    assert cosines.min() >= 0.999, cosines.min()


def test_the_onnx_runtime_gives_the_numpy_encoders_vectors() -> None:
    """The shipped ONNX graph (weights fed from ``ge2e.npz``) on the meeting's windows, long and short, against
    the numpy network the test above checks against resemblyzer's original."""
    meeting = _audio("team-meeting.ogg")
    spans = _turns(meeting)[:2]
    for window, hop in ((1.6, 0.5), (0.8, 0.2)):
        onnx = VoiceEncoder(window, hop, runtime="onnx").embed(meeting, spans)
        ours = VoiceEncoder(window, hop, runtime="numpy").embed(meeting, spans)
        assert onnx.spans == ours.spans and len(onnx.spans) > 4
        assert np.abs(onnx.vectors - ours.vectors).max() < 1e-4
