"""Provider interfaces: what the pipelines need from speech, language and embedding models.

Each has offline implementations (models shipped inside packages, for the embedded default) and hosted ones
(real HTTP clients: Deepgram, OpenAI-compatible APIs). HTTP clients translate failures where they enter:
timeouts, connection errors, 429 and 5xx become ``errors.TransientError`` (with ``retry_after`` from a
``Retry-After`` header), other 4xx and unusable answers ``errors.PermanentError``.

Every answer carries ``usage`` (``calls``, ``tokens_in``, ``tokens_out``, ``audio_seconds``) so that
``Context.call`` can record what each step cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ingestd.models import JSON

SAMPLE_RATE = 16_000  # every provider takes 16 kHz mono signed 16-bit little-endian PCM


@dataclass(frozen=True)
class SpeechSpan:
    """A stretch of speech, in seconds from the start of the decoded audio."""

    start: float
    end: float


@dataclass(frozen=True)
class TranscriptWord:
    word: str  # as written in the text (punctuation attached)
    start: float  # seconds, relative to the clip given to the transcriber
    end: float
    confidence: float | None = None
    speaker: str | None = None  # the provider's own label, per clip


@dataclass(frozen=True)
class TranscriptSegment:
    start: float  # seconds, relative to the clip given to the transcriber
    end: float
    text: str
    speaker: str | None = None
    words: tuple[TranscriptWord, ...] = ()  # empty when the provider gives no word times


@dataclass(frozen=True)
class Transcript:
    segments: list[TranscriptSegment]
    language: str | None
    provider: str
    usage: JSON = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


@dataclass(frozen=True)
class ChatResult:
    data: JSON  # the parsed JSON object that matched the requested schema
    provider: str
    model: str
    usage: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    provider: str
    model: str
    usage: JSON = field(default_factory=dict)


@runtime_checkable
class VoiceActivityDetector(Protocol):
    name: str

    async def detect(self, pcm_path: str) -> list[SpeechSpan]:
        """Speech spans of a raw PCM file (16 kHz mono s16le), read in a streaming way."""
        ...


@dataclass(frozen=True)
class ClipRequest:
    """What one clip's transcription asks for: the keywords of ``SpeechToText.transcribe``, as one value."""

    language: str | None = None
    speakers: int | None = None
    vocabulary: Sequence[str] = ()
    request_key: str | None = None


@runtime_checkable
class SpeechToText(Protocol):
    """Speech to text. A client subclasses this and writes ``transcribe_clip``; the keyword signature is here once."""

    name: str

    async def transcribe(
        self,
        pcm: bytes,
        *,
        language: str | None = None,
        speakers: int | None = None,
        vocabulary: Sequence[str] = (),
        request_key: str | None = None,
    ) -> Transcript:
        """Transcribe one clip of 16 kHz mono s16le PCM. ``request_key`` identifies the step (hosted clients send
        it as an ``Idempotency-Key``/``X-Request-Key`` header so a simulator can count calls per step)."""
        return await self.transcribe_clip(pcm, ClipRequest(language, speakers, vocabulary, request_key))

    async def transcribe_clip(self, pcm: bytes, request: ClipRequest) -> Transcript:
        """What ``transcribe`` runs: one clip with its request."""
        ...


@runtime_checkable
class ChatModel(Protocol):
    name: str

    async def complete_json(
        self, system: str, user: str, *, schema: JSON, schema_name: str, request_key: str | None = None
    ) -> ChatResult:
        """One chat completion constrained to ``schema`` (JSON-schema structured output)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> Embeddings: ...
