"""Deepgram pre-recorded transcription (``POST /v1/listen``) as a ``SpeechToText``.

Sends the clip as WAV with ``diarize``, ``utterances``, ``punctuate`` and ``smart_format``; the language when
given (else ``detect_language``); the vocabulary as ``keyterm`` (Nova-3) or ``keywords`` (older models).
Utterances become transcript segments with their words and speaker labels ``speaker_0``, ``speaker_1``... Those
labels are Deepgram's, per clip: the audio pipeline maps them onto the job's own speakers (``diarize``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ingestd.models import JSON
from ingestd.providers import http, wav
from ingestd.providers.base import ClipRequest, SpeechToText, Transcript, TranscriptSegment, TranscriptWord


class DeepgramTranscriber(SpeechToText):
    """``SpeechToText`` over Deepgram's pre-recorded API.

    Args:
        base_url: ``https://api.deepgram.com`` (the client appends ``/v1/listen``).
        api_key: a Deepgram API key (sent as ``Authorization: Token ...``).
        model: ``nova-3`` by default.
        timeout: seconds for one call.
        client: an optional shared ``httpx.AsyncClient``.
    """

    name = "deepgram"

    def __init__(
        self,
        base_url: str = "https://api.deepgram.com",
        api_key: str | None = None,
        model: str = "nova-3",
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.http = http.ProviderHTTP(self.name, base_url, api_key, timeout=timeout, client=client, auth_scheme="Token")

    def _params(self, language: str | None, vocabulary: Sequence[str]) -> list[tuple[str, str]]:
        params = [("model", self.model), ("diarize", "true"), ("utterances", "true"), ("punctuate", "true")]
        params.append(("smart_format", "true"))
        params.append(("language", language) if language else ("detect_language", "true"))
        # Nova-3 replaced keyword boosting with key-term prompting; older models only know ``keywords``.
        vocab_param = "keyterm" if self.model.startswith("nova-3") else "keywords"
        params += [(vocab_param, term) for term in vocabulary if term.strip()]
        return params

    async def transcribe_clip(self, pcm: bytes, request: ClipRequest) -> Transcript:
        """Transcribe one clip; ``speakers`` is not needed (Deepgram's diarization finds the count itself)."""
        response = await self.http.post(
            "/v1/listen",
            request_key=request.request_key,
            params=self._params(request.language, request.vocabulary),
            content=wav.pcm_to_wav(pcm),
            headers={"Content-Type": "audio/wav"},
        )
        return self._transcript(self.http.json(response), request.language, wav.pcm_seconds(pcm))

    def _transcript(self, body: JSON, language: str | None, clip_seconds: float) -> Transcript:
        try:
            results = body["results"]
            channel = results["channels"][0]
            alternative = channel["alternatives"][0]
            duration = float(body.get("metadata", {}).get("duration", clip_seconds))
            utterances = results.get("utterances")
            if utterances is not None:
                segments = [_utterance_segment(u) for u in utterances]
            else:
                segments = _whole_clip_segment(alternative, duration)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self.http.malformed(f"no results.channels[0].alternatives[0] ({exc!r})") from exc
        detected = channel.get("detected_language") if isinstance(channel, dict) else None
        return Transcript(
            segments=[s for s in segments if s.text.strip()],
            language=language or detected,
            provider=self.name,
            usage=http.usage(audio_seconds=duration),
        )

    async def aclose(self) -> None:
        await self.http.aclose()


def _label(speaker: Any) -> str | None:
    return f"speaker_{speaker}" if speaker is not None else None


def _words(raw: Any) -> tuple[TranscriptWord, ...]:
    """Deepgram's words (``punctuated_word`` when given) with their times, confidence and per-clip speaker."""
    return tuple(
        TranscriptWord(
            word=str(w.get("punctuated_word") or w["word"]),
            start=float(w["start"]),
            end=float(w["end"]),
            confidence=float(w["confidence"]) if w.get("confidence") is not None else None,
            speaker=_label(w.get("speaker")),
        )
        for w in raw or ()
    )


def _utterance_segment(utterance: dict[str, Any]) -> TranscriptSegment:
    return TranscriptSegment(
        start=float(utterance["start"]),
        end=float(utterance["end"]),
        text=str(utterance["transcript"]),
        speaker=_label(utterance.get("speaker")),
        words=_words(utterance.get("words")),
    )


def _whole_clip_segment(alternative: dict[str, Any], duration: float) -> list[TranscriptSegment]:
    text = str(alternative.get("transcript", ""))
    words = alternative.get("words") or []
    start = float(words[0]["start"]) if words else 0.0
    end = float(words[-1]["end"]) if words else duration
    return [TranscriptSegment(start=start, end=end, text=text, words=_words(words))] if text.strip() else []
