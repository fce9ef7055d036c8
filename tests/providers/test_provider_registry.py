"""``build_providers``: the settings choose the implementations; hosted ones work against the simulator."""

from __future__ import annotations

import pytest

from ingestd.providers.deepgram import DeepgramTranscriber
from ingestd.providers.hosted_vad import HostedVAD
from ingestd.providers.openai_compat import OpenAIChat, OpenAIEmbedder, OpenAITranscriber
from ingestd.providers.registry import ProviderConfigError, build_providers
from ingestd.settings import Settings
from ingestd.sim.testing import SimulatorURL, provider_env, provider_settings


async def test_hosted_providers_from_settings(sim: SimulatorURL, speech_pcm: bytes) -> None:
    providers = build_providers(Settings(**provider_settings(sim), deepgram_model="nova-2"))
    try:
        assert isinstance(providers.stt, DeepgramTranscriber) and providers.stt.model == "nova-2"
        assert isinstance(providers.vad, HostedVAD)
        assert isinstance(providers.chat, OpenAIChat)
        assert isinstance(providers.embedder, OpenAIEmbedder)
        transcript = await providers.stt.transcribe(speech_pcm, request_key="r")
        vectors = await providers.embedder.embed([transcript.text])
        assert len(vectors.vectors[0]) == providers.embedder.dimensions == 1536
    finally:
        await providers.aclose()
    assert providers.http_client is not None and providers.http_client.is_closed


def test_openai_stt_and_embedding_dimensions() -> None:
    fields = provider_settings("http://127.0.0.1:1", stt="openai")
    providers = build_providers(Settings(**fields, openai_embedding_dimensions=256, openai_stt_model="whisper-large"))
    assert isinstance(providers.stt, OpenAITranscriber) and providers.stt.model == "whisper-large"
    assert providers.embedder.dimensions == 256


def test_environment_variables_choose_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in provider_env("http://127.0.0.1:1").items():
        monkeypatch.setenv(name, value)
    providers = build_providers(Settings())
    assert isinstance(providers.stt, DeepgramTranscriber)
    assert providers.stt.http.base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stt_provider": "whisperx"}, "INGESTD_STT_PROVIDER='whisperx': expected one of offline, deepgram, openai"),
        ({"llm_provider": "anthropic"}, "INGESTD_LLM_PROVIDER"),
        ({"deepgram_api_key": None}, "INGESTD_DEEPGRAM_API_KEY must be set"),
        ({"hosted_vad_url": None}, "INGESTD_HOSTED_VAD_URL must be set"),
        ({"stt_provider": "offline", "whisper_model": "large-v3"}, "INGESTD_WHISPER_MODEL='large-v3': expected one of"),
    ],
)
def test_bad_settings_are_refused_clearly(fields: dict[str, object], message: str) -> None:
    settings = Settings(**{**provider_settings("http://127.0.0.1:1"), **fields})
    with pytest.raises(ProviderConfigError, match=message.replace("(", r"\(")):
        build_providers(settings)


def test_offline_llm_gives_no_chat_model() -> None:
    providers = build_providers(Settings(**provider_settings("http://127.0.0.1:1", llm="offline")))
    assert providers.chat is None


def test_the_default_is_offline_everywhere() -> None:
    for module in ("ingestd.providers.whisper", "ingestd.providers.silero"):
        pytest.importorskip(module)  # written by the audio and memory engineers
    providers = build_providers(Settings(database_url="sqlite:///unused.db"))
    assert providers.chat is None and providers.http_client is None
    assert type(providers.stt).__name__ == "WhisperTranscriber"
    assert type(providers.vad).__name__ == "SileroVAD"
    assert type(providers.embedder).__name__ == "OnnxMiniLMEmbedder"
