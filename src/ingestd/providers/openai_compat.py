"""OpenAI-compatible HTTP APIs: chat completions with JSON-schema output, transcription, embeddings.

The same wire format is served by OpenAI, Gemini's OpenAI-compatible endpoint, vLLM, Ollama and llama.cpp's
server; only ``base_url``, ``api_key`` and ``model`` change (see docs/providers.md). ``base_url`` includes the
version prefix (``https://api.openai.com/v1``). These clients retry nothing themselves: the runner does, under the
shared limits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from ingestd.models import JSON
from ingestd.providers import http, wav
from ingestd.providers.base import ChatResult, ClipRequest, Embeddings, SpeechToText, Transcript, TranscriptSegment

# Embedding sizes of well-known models, so ``dimensions`` is known before the first call.
KNOWN_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class _OpenAIClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float,
        client: httpx.AsyncClient | None,
        name: str,
    ) -> None:
        self.name = name
        self.model = model
        self.http = http.ProviderHTTP(name, base_url, api_key, timeout=timeout, client=client)

    async def aclose(self) -> None:
        await self.http.aclose()


class OpenAIChat(_OpenAIClient):
    """``ChatModel`` over ``POST {base_url}/chat/completions`` with ``response_format: json_schema``.

    Args:
        base_url: e.g. ``https://api.openai.com/v1``.
        api_key: sent as a Bearer token; None for servers without auth.
        model: e.g. ``gpt-4o-mini``.
        timeout: seconds for one call.
        client: an optional shared ``httpx.AsyncClient``.
        strict: ask for strict schema adherence (the schema must then list every property as required and
            forbid additional properties, as OpenAI's strict mode demands).
        temperature: sampling temperature (0 for repeatable extraction).
        name: the provider name reported in results and errors.
    """

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
        *,
        strict: bool = True,
        temperature: float = 0.0,
        name: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, timeout, client, name)
        self.strict = strict
        self.temperature = temperature

    async def complete_json(
        self, system: str, user: str, *, schema: JSON, schema_name: str, request_key: str | None = None
    ) -> ChatResult:
        """One completion; the answer parsed as a JSON object (not re-validated against ``schema``)."""
        payload = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": self.strict},
            },
        }
        response = await self.http.post("/chat/completions", request_key=request_key, json=payload)
        body = self.http.json(response)
        return ChatResult(
            data=self._answer(body),
            provider=self.name,
            model=str(body.get("model") or self.model),
            usage=self._usage(body),
        )

    def _answer(self, body: JSON) -> JSON:
        try:
            choice = body["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise self.http.malformed("no choices[0].message") from exc
        if message.get("refusal"):
            raise self.http.malformed(f"the model refused: {message['refusal']}")
        if choice.get("finish_reason") == "length":
            raise self.http.malformed("the answer was cut off at the token limit (finish_reason=length)")
        text = message.get("content")
        try:
            data = json.loads(text) if isinstance(text, str) else None
        except ValueError as exc:
            raise self.http.malformed(f"the answer is not JSON: {text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise self.http.malformed(f"expected a JSON object, got {str(text)[:200]!r}")
        return data

    @staticmethod
    def _usage(body: JSON) -> JSON:
        tokens = body.get("usage") or {}
        return http.usage(
            tokens_in=int(tokens.get("prompt_tokens") or 0), tokens_out=int(tokens.get("completion_tokens") or 0)
        )


class OpenAITranscriber(_OpenAIClient, SpeechToText):
    """``SpeechToText`` over ``POST {base_url}/audio/transcriptions`` (multipart WAV upload).

    ``whisper-1`` (and most self-hosted Whisper servers) answer ``verbose_json`` with timed segments; the
    ``gpt-4o*-transcribe`` models only answer ``json``, which gives one segment spanning the clip. The
    vocabulary is passed as the ``prompt``. No diarization: segments have no speaker.
    """

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str = "whisper-1",
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
        *,
        name: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, timeout, client, name)

    @property
    def response_format(self) -> str:
        return "json" if self.model.startswith("gpt-4o") else "verbose_json"

    async def transcribe_clip(self, pcm: bytes, request: ClipRequest) -> Transcript:
        """Transcribe one clip (``speakers`` is ignored: this API does not diarize)."""
        form: dict[str, str] = {"model": self.model, "response_format": self.response_format}
        if request.language:
            form["language"] = request.language
        terms = [t for t in request.vocabulary if t.strip()]
        if terms:
            form["prompt"] = "Vocabulary: " + ", ".join(terms) + "."
        files = {"file": ("audio.wav", wav.pcm_to_wav(pcm), "audio/wav")}
        key = request.request_key
        response = await self.http.post("/audio/transcriptions", request_key=key, data=form, files=files)
        return self._transcript(self.http.json(response), request.language, wav.pcm_seconds(pcm))

    def _transcript(self, body: JSON, language: str | None, clip_seconds: float) -> Transcript:
        text = body.get("text")
        if not isinstance(text, str):
            raise self.http.malformed("no 'text'")
        try:
            segments = [_segment(s) for s in body["segments"]] if "segments" in body else []
        except (KeyError, TypeError, ValueError) as exc:
            raise self.http.malformed(f"bad segments ({exc!r})") from exc
        if not segments and text.strip():
            segments = [TranscriptSegment(start=0.0, end=clip_seconds, text=text.strip())]
        raw_usage = body.get("usage")
        tokens: JSON = raw_usage if isinstance(raw_usage, dict) else {}
        return Transcript(
            segments=[s for s in segments if s.text],
            language=language or body.get("language"),
            provider=self.name,
            usage=http.usage(
                tokens_in=int(tokens.get("input_tokens") or 0),
                tokens_out=int(tokens.get("output_tokens") or 0),
                audio_seconds=float(body.get("duration") or clip_seconds),
            ),
        )


def _segment(raw: dict[str, Any]) -> TranscriptSegment:
    return TranscriptSegment(start=float(raw["start"]), end=float(raw["end"]), text=str(raw["text"]).strip())


class OpenAIEmbedder(_OpenAIClient):
    """``Embedder`` over ``POST {base_url}/embeddings``.

    ``dimensions``: when given, it is sent (``text-embedding-3-*`` shorten their vectors to it); otherwise it is
    the known size of ``model`` (``KNOWN_DIMENSIONS``), or 0 until the first answer tells. Inputs are sent in
    batches of ``batch_size``; the request key of batch ``i > 0`` is ``<request_key>#<i>``.
    """

    def __init__(
        self,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str = "text-embedding-3-small",
        timeout: float = 120.0,
        client: httpx.AsyncClient | None = None,
        *,
        dimensions: int | None = None,
        batch_size: int = 512,
        name: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, timeout, client, name)
        self._requested_dimensions = dimensions
        self.dimensions = dimensions or KNOWN_DIMENSIONS.get(model, 0)
        self.batch_size = batch_size

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> Embeddings:
        """One unit-length vector per text, in order."""
        vectors: list[list[float]] = []
        tokens = calls = 0
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            key = request_key if request_key is None or start == 0 else f"{request_key}#{start // self.batch_size}"
            batch_vectors, batch_tokens = await self._embed_batch(batch, key)
            vectors += batch_vectors
            tokens += batch_tokens
            calls += 1
        if vectors:
            self.dimensions = len(vectors[0])
        return Embeddings(
            vectors=vectors, provider=self.name, model=self.model, usage=http.usage(calls=calls, tokens_in=tokens)
        )

    async def _embed_batch(self, batch: list[str], request_key: str | None) -> tuple[list[list[float]], int]:
        payload: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self._requested_dimensions:
            payload["dimensions"] = self._requested_dimensions
        body = self.http.json(await self.http.post("/embeddings", request_key=request_key, json=payload))
        try:
            rows = sorted(body["data"], key=lambda row: int(row["index"]))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.http.malformed(f"no data[].embedding ({exc!r})") from exc
        if len(vectors) != len(batch):
            raise self.http.malformed(f"{len(vectors)} vectors for {len(batch)} inputs")
        return vectors, int((body.get("usage") or {}).get("prompt_tokens") or 0)
