"""Audio in the simulator: reading WAV bodies, an energy voice-activity detector, and made-up transcripts.

The simulator cannot recognise speech, so a transcript is deterministic filler: sentences picked by a hash of the
audio bytes, about ``words_per_second`` words per second of detected speech, placed inside the speech spans the
energy detector finds. Silence gives an empty transcript, which is what a real service answers too.
"""

from __future__ import annotations

import hashlib
import io
import random
import wave
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 480  # 30 ms at 16 kHz
_SENTENCES = (
    "Let's go over the plan for next week before the meeting starts.",
    "I talked to Maria about the budget and she agreed to review it.",
    "Can you send me the slides by Friday afternoon?",
    "The delivery is late again, so we should call the supplier tomorrow.",
    "We need to book the flights to Lisbon before prices go up.",
    "Remind me to pick up the kids at five thirty.",
    "The new design looks good but the colours are a bit too dark.",
    "I think the main risk is the database migration in March.",
    "Let's schedule a call with the client on Tuesday at ten.",
    "She said the report will be ready by the end of the month.",
    "We should try the Italian place near the station for lunch.",
    "My doctor's appointment moved to Thursday morning.",
    "The team finished the prototype and the first tests look promising.",
    "Don't forget to renew the car insurance this week.",
    "I'll draft the proposal tonight and share it in the morning.",
    "The weather in Berlin was terrible during the conference.",
    "We agreed to hire two more engineers for the platform team.",
    "Could you check whether the invoice was paid?",
    "The kids want to visit their grandparents over the holidays.",
    "Let's keep the launch date but cut the reporting feature.",
)


@dataclass(frozen=True)
class Audio:
    """What the simulator knows about an uploaded clip."""

    seconds: float
    speech: list[tuple[float, float]]  # spans of speech, seconds
    digest: bytes  # a hash of the bytes, seeding the transcript


class BadAudio(ValueError):
    """The body is not audio the simulator can read."""


class EnergyDetector:
    """A streaming energy VAD over 16 kHz mono s16le: 30 ms frames above a dBFS threshold are speech.

    Spans shorter than 0.25 s are dropped, gaps shorter than 0.3 s are bridged, and spans are padded by 0.1 s.
    Only one float per frame is kept, so hours of audio fit in a few megabytes.
    """

    def __init__(self, threshold_db: float = -40.0) -> None:
        self.threshold_db = threshold_db
        self._pending = b""
        self._levels: list[np.ndarray] = []
        self.samples = 0

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        usable = len(data) - len(data) % (FRAME * 2)
        self._pending = data[usable:]
        if usable:
            frames = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32).reshape(-1, FRAME)
            rms = np.sqrt(np.mean(frames * frames, axis=1)) / 32768.0
            self._levels.append(20.0 * np.log10(np.maximum(rms, 1e-9)))
            self.samples += usable // 2

    def finish(self) -> list[tuple[float, float]]:
        """Speech spans in seconds; call once, after the last ``feed``."""
        self.samples += len(self._pending) // 2
        if not self._levels:
            return []
        loud = np.concatenate(self._levels) > self.threshold_db
        return _smooth(_runs(loud), self.samples / SAMPLE_RATE)


def _runs(loud: np.ndarray) -> list[tuple[float, float]]:
    edges = np.diff(np.concatenate(([0], loud.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    step = FRAME / SAMPLE_RATE
    return [(float(s) * step, float(e) * step) for s, e in zip(starts, ends, strict=True)]


def _smooth(runs: list[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < 0.3:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(round(max(0.0, s - 0.1), 3), round(min(total, e + 0.1), 3)) for s, e in merged if e - s >= 0.25]


def read_audio(body: bytes, *, raw_pcm: bool, threshold_db: float) -> Audio:
    """Duration and speech of an upload: WAV from its header, raw PCM16 16 kHz when told, else from the size."""
    if not body:
        raise BadAudio("empty audio body")
    digest = hashlib.sha256(body).digest()
    if body[:4] == b"RIFF":
        pcm, rate = _wav_pcm(body)
        detector = EnergyDetector(threshold_db)
        detector.feed(pcm if rate == SAMPLE_RATE else _resample(pcm, rate))
        seconds = len(pcm) / 2 / rate
        return Audio(seconds, detector.finish(), digest)
    if raw_pcm:
        detector = EnergyDetector(threshold_db)
        detector.feed(body)
        return Audio(len(body) / 2 / SAMPLE_RATE, detector.finish(), digest)
    # A compressed format we do not decode: assume ~32 kB per second, all of it speech.
    seconds = len(body) / 32_000
    return Audio(seconds, [(0.0, seconds)], digest)


def _wav_pcm(body: bytes) -> tuple[bytes, int]:
    try:
        with wave.open(io.BytesIO(body)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadAudio(f"corrupt WAV: {exc}") from exc
    if width != 2:
        raise BadAudio(f"unsupported WAV sample width {width * 8} bits (the simulator reads 16-bit PCM)")
    if channels > 1:
        samples = np.frombuffer(frames[: len(frames) - len(frames) % (2 * channels)], dtype="<i2")
        frames = samples.reshape(-1, channels).mean(axis=1).astype("<i2").tobytes()
    return frames, rate


def _resample(pcm: bytes, rate: int) -> bytes:
    # Nearest-sample resampling is plenty for an energy detector.
    samples = np.frombuffer(pcm, dtype="<i2")
    positions = (np.arange(int(len(samples) * SAMPLE_RATE / rate)) * rate / SAMPLE_RATE).astype(np.int64)
    return samples[np.minimum(positions, len(samples) - 1)].tobytes() if len(samples) else b""


@dataclass(frozen=True)
class Utterance:
    start: float
    end: float
    words: list[tuple[str, float, float]]  # (word, start, end)
    speaker: int

    @property
    def text(self) -> str:
        return " ".join(w for w, _, _ in self.words)


def make_utterances(
    audio: Audio, *, seed: int, words_per_second: float, keywords: list[str], speakers: int = 2
) -> list[Utterance]:
    """Deterministic filler utterances inside the speech spans (about 8 s each), speakers alternating."""
    rng = random.Random(int.from_bytes(hashlib.sha256(audio.digest + str(seed).encode()).digest()[:8], "big"))
    words = _word_stream(rng, keywords)
    utterances: list[Utterance] = []
    for span_start, span_end in audio.speech:
        cursor = span_start
        while span_end - cursor > 0.2:
            end = min(span_end, cursor + 8.0)
            count = max(1, round((end - cursor) * words_per_second))
            step = (end - cursor) / count
            timed = [(next(words), cursor + i * step, cursor + (i + 0.9) * step) for i in range(count)]
            speaker = rng.randrange(max(1, speakers)) if utterances else 0
            utterances.append(Utterance(round(cursor, 3), round(end, 3), _rounded(timed), speaker))
            cursor = end
    return utterances


def _rounded(timed: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    return [(w, round(s, 3), round(e, 3)) for w, s, e in timed]


def _word_stream(rng: random.Random, keywords: list[str]) -> Iterator[str]:
    """Words of hash-picked sentences, forever; the request's keywords come first so callers can see them."""
    yield from (k for k in keywords if k)
    while True:
        yield from rng.choice(_SENTENCES).split()
