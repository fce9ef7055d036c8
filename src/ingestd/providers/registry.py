"""Choosing providers from ``Settings``: ``build_providers(settings) -> Providers``.

- ``INGESTD_STT_PROVIDER``: ``offline`` (``whisper.WhisperTranscriber``), ``deepgram``
  (``deepgram.DeepgramTranscriber``), ``openai`` (``openai_compat.OpenAITranscriber``);
- ``INGESTD_VAD_PROVIDER``: ``offline`` (``silero.SileroVAD``), ``hosted`` (``hosted_vad.HostedVAD``);
- ``INGESTD_LLM_PROVIDER``: ``offline`` (None: pipelines use their own deterministic fallbacks), ``openai``
  (``openai_compat.OpenAIChat``);
- ``INGESTD_EMBEDDING_PROVIDER``: ``offline`` (``onnx_embedder.OnnxMiniLMEmbedder``), ``openai``
  (``openai_compat.OpenAIEmbedder``);
- ``INGESTD_MEMORY_EMBEDDING`` (with ``embedding_provider=offline``): ``offline_embedder(choice, fallback)`` gives
  ``onnx`` (the default: ``OnnxMiniLMEmbedder``, torch-free), ``minilm`` (``minilm.MiniLMEmbedder``, the torch
  extra) or ``hashing`` (the caller's ``fallback``, which ``onnx`` also falls back to, with one WARNING, when its
  model package is not installed).

Offline implementations are imported only when chosen, so a process using hosted providers never loads a local
model. Hosted clients share one ``httpx.AsyncClient``; ``Providers.aclose()`` closes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ingestd.providers.base import ChatModel, Embedder, SpeechToText, VoiceActivityDetector
from ingestd.settings import Settings

STT_PROVIDERS = ("offline", "deepgram", "openai")
VAD_PROVIDERS = ("offline", "hosted")
LLM_PROVIDERS = ("offline", "openai")
EMBEDDING_PROVIDERS = ("offline", "openai")
OFFLINE_EMBEDDINGS = ("onnx", "minilm", "hashing")

log = logging.getLogger("ingestd.providers")
_warned: set[str] = set()  # fallback reasons already logged by this process


class ProviderConfigError(ValueError):
    """The provider settings name an unknown provider or lack what it needs (a URL, an API key)."""


@dataclass(frozen=True)
class Providers:
    """The providers one process uses. ``chat`` is None when ``llm_provider`` is ``offline``."""

    vad: VoiceActivityDetector
    stt: SpeechToText
    chat: ChatModel | None
    embedder: Embedder
    http_client: httpx.AsyncClient | None = None  # shared by the hosted clients, None when none is hosted

    async def aclose(self) -> None:
        """Close the shared HTTP client (the hosted clients stop working)."""
        if self.http_client is not None:
            await self.http_client.aclose()


def _check(setting: str, value: str, allowed: tuple[str, ...]) -> str:
    choice = value.strip().lower()
    if choice not in allowed:
        raise ProviderConfigError(f"INGESTD_{setting.upper()}={value!r}: expected one of {', '.join(allowed)}")
    return choice


def _required(setting: str, value: str | None, why: str) -> str:
    if not value:
        raise ProviderConfigError(f"INGESTD_{setting.upper()} must be set {why}")
    return value


def build_providers(settings: Settings, *, http_client: httpx.AsyncClient | None = None) -> Providers:
    """The providers ``settings`` choose.

    Args:
        settings: the process settings (``stt_provider``, ``vad_provider``, ``llm_provider``,
            ``embedding_provider`` and the hosted services' URLs, keys and models).
        http_client: a client for the hosted providers to share; one is created when needed and not given.

    Raises:
        ProviderConfigError: an unknown provider name, or a hosted provider without its URL or key.
    """
    kinds = (
        _check("stt_provider", settings.stt_provider, STT_PROVIDERS),
        _check("vad_provider", settings.vad_provider, VAD_PROVIDERS),
        _check("llm_provider", settings.llm_provider, LLM_PROVIDERS),
        _check("embedding_provider", settings.embedding_provider, EMBEDDING_PROVIDERS),
    )
    if http_client is None and any(kind != "offline" for kind in kinds):
        # No pool cap: concurrency is bounded by ingestd's own provider limits, not by a hidden httpx default.
        http_client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
    stt_kind, vad_kind, llm_kind, embedding_kind = kinds
    return Providers(
        vad=_build_vad(settings, vad_kind, http_client),
        stt=_build_stt(settings, stt_kind, http_client),
        chat=_build_chat(settings, llm_kind, http_client),
        embedder=_build_embedder(settings, embedding_kind, http_client),
        http_client=http_client,
    )


def _build_stt(settings: Settings, kind: str, client: httpx.AsyncClient | None) -> SpeechToText:
    timeout = settings.provider_timeout_seconds
    if kind == "deepgram":
        from ingestd.providers.deepgram import DeepgramTranscriber

        key = _required("deepgram_api_key", settings.deepgram_api_key, "when INGESTD_STT_PROVIDER=deepgram")
        return DeepgramTranscriber(settings.deepgram_url, key, settings.deepgram_model, timeout, client)
    if kind == "openai":
        from ingestd.providers.openai_compat import OpenAITranscriber

        return OpenAITranscriber(
            settings.openai_base_url, settings.openai_api_key, settings.openai_stt_model, timeout, client
        )
    from ingestd.providers import whisper_models
    from ingestd.providers.whisper import WhisperTranscriber

    if settings.whisper_model not in whisper_models.MODELS:
        known = ", ".join(whisper_models.MODELS)
        raise ProviderConfigError(f"INGESTD_WHISPER_MODEL={settings.whisper_model!r}: expected one of {known}")
    offline: SpeechToText = WhisperTranscriber(model=settings.whisper_model)
    return offline


def _build_vad(settings: Settings, kind: str, client: httpx.AsyncClient | None) -> VoiceActivityDetector:
    if kind == "hosted":
        from ingestd.providers.hosted_vad import HostedVAD

        url = _required("hosted_vad_url", settings.hosted_vad_url, "when INGESTD_VAD_PROVIDER=hosted")
        return HostedVAD(url, settings.hosted_vad_api_key, settings.provider_timeout_seconds, client)
    from ingestd.providers.silero import SileroVAD

    offline: VoiceActivityDetector = SileroVAD()
    return offline


def _build_chat(settings: Settings, kind: str, client: httpx.AsyncClient | None) -> ChatModel | None:
    if kind == "offline":
        return None
    from ingestd.providers.openai_compat import OpenAIChat

    return OpenAIChat(
        settings.openai_base_url,
        settings.openai_api_key,
        settings.openai_chat_model,
        settings.provider_timeout_seconds,
        client,
    )


def _build_embedder(settings: Settings, kind: str, client: httpx.AsyncClient | None) -> Embedder:
    if kind == "openai":
        from ingestd.providers.openai_compat import OpenAIEmbedder

        return OpenAIEmbedder(
            settings.openai_base_url,
            settings.openai_api_key,
            settings.openai_embedding_model,
            settings.provider_timeout_seconds,
            client,
            dimensions=settings.openai_embedding_dimensions,
        )
    from ingestd.providers.onnx_embedder import OnnxMiniLMEmbedder

    offline: Embedder = OnnxMiniLMEmbedder()
    return offline


def offline_embedder(choice: str, fallback: Callable[[], Embedder]) -> Embedder:
    """The offline embedder ``choice`` (``INGESTD_MEMORY_EMBEDDING``) names.

    Args:
        choice: ``onnx`` (all-MiniLM-L6-v2 int8 on onnxruntime), ``minilm`` (the same model on torch, the
            ``minilm`` extra) or ``hashing`` (``fallback()``).
        fallback: builds the no-model embedder (the memory pipeline's feature hashing); used for ``hashing``, and
            for ``onnx`` when its model cannot load here (one WARNING per process says why).

    Raises:
        ProviderConfigError: an unknown choice.
    """
    kind = _check("memory_embedding", choice, OFFLINE_EMBEDDINGS)
    if kind == "minilm":
        from ingestd.providers.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if kind == "onnx":
        from ingestd.providers.onnx_embedder import OnnxMiniLMEmbedder, missing

        reason = missing()
        if reason is None:
            return OnnxMiniLMEmbedder()
        if reason not in _warned:
            _warned.add(reason)
            log.warning("INGESTD_MEMORY_EMBEDDING=onnx: %s; falling back to feature hashing", reason)
    return fallback()
