"""The hosted provider clients against the simulator over real HTTP: shapes, usage, request keys."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import pytest

from ingestd.providers.base import ChatModel, Embedder, SpeechToText, VoiceActivityDetector
from ingestd.providers.deepgram import DeepgramTranscriber
from ingestd.providers.hosted_vad import HostedVAD
from ingestd.providers.openai_compat import OpenAIChat, OpenAIEmbedder, OpenAITranscriber
from ingestd.providers.wav import pcm_seconds, pcm_to_wav
from ingestd.sim.testing import API_KEY, SimulatorURL

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "category", "action_items"],
    "properties": {
        "title": {"type": "string"},
        "category": {"type": "string", "enum": ["work", "personal"]},
        "action_items": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["text", "due"],
                "properties": {"text": {"type": "string"}, "due": {"type": ["string", "null"], "format": "date"}},
            },
        },
    },
}


def test_pcm_to_wav_round_trips(speech_pcm: bytes) -> None:
    import io
    import wave

    with wave.open(io.BytesIO(pcm_to_wav(speech_pcm))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16_000)
        assert w.readframes(w.getnframes()) == speech_pcm
    assert pcm_seconds(speech_pcm) == 6.0


async def test_deepgram_transcribes_with_speakers_and_keywords(
    sim: SimulatorURL, http_client: httpx.AsyncClient, speech_pcm: bytes
) -> None:
    stt = DeepgramTranscriber(sim, API_KEY, model="nova-2")
    assert isinstance(stt, SpeechToText)
    transcript = await stt.transcribe(speech_pcm, vocabulary=["Kubernetes"], request_key="job1/transcribe[0]")
    await stt.aclose()
    assert transcript.provider == "deepgram"
    assert transcript.language == "en"  # detected: no language was given
    assert transcript.text.startswith("Kubernetes")
    assert transcript.segments and all(s.speaker and s.speaker.startswith("speaker_") for s in transcript.segments)
    assert all(0.3 <= s.start < s.end <= 5.7 for s in transcript.segments)
    assert transcript.usage == {"calls": 1, "tokens_in": 0, "tokens_out": 0, "audio_seconds": 6.0}
    assert sim.stats()["route_keys"] == {"deepgram": {"job1/transcribe[0]": 1}}


async def test_deepgram_nova3_sends_keyterms_and_the_language(
    sim: SimulatorURL, http_client: httpx.AsyncClient, speech_pcm: bytes
) -> None:
    stt = DeepgramTranscriber(sim, API_KEY, client=http_client)
    transcript = await stt.transcribe(speech_pcm, language="de", vocabulary=["Zeitplan"])
    await stt.aclose()  # a shared client is not closed by its user
    assert not http_client.is_closed
    assert transcript.language == "de"
    assert transcript.text.startswith("Zeitplan")


async def test_deepgram_on_silence_gives_no_segments(sim: SimulatorURL, http_client: httpx.AsyncClient) -> None:
    transcript = await DeepgramTranscriber(sim, API_KEY, client=http_client).transcribe(b"\0\0" * 16_000 * 2)
    assert transcript.segments == [] and transcript.text == ""
    assert transcript.usage["audio_seconds"] == 2.0


@pytest.mark.parametrize(("model", "timed"), [("whisper-1", True), ("gpt-4o-mini-transcribe", False)])
async def test_openai_transcription(
    sim: SimulatorURL, http_client: httpx.AsyncClient, speech_pcm: bytes, model: str, timed: bool
) -> None:
    stt = OpenAITranscriber(sim.openai_base_url, API_KEY, model, client=http_client)
    transcript = await stt.transcribe(speech_pcm, language="en", vocabulary=["Kubernetes"], request_key="k1")
    await stt.aclose()
    assert transcript.provider == "openai" and transcript.language == "en"
    assert transcript.text.startswith("Kubernetes")  # the vocabulary went into the prompt
    if timed:
        assert len(transcript.segments) >= 2 and transcript.segments[0].start > 0.3
    else:
        assert [(s.start, s.end) for s in transcript.segments] == [(0.0, 6.0)]
    assert transcript.usage["audio_seconds"] == 6.0 and transcript.usage["calls"] == 1
    assert sim.stats()["route_keys"]["transcriptions"] == {"k1": 1}


async def test_chat_answers_a_schema_valid_object(sim: SimulatorURL, http_client: httpx.AsyncClient) -> None:
    chat = OpenAIChat(sim.openai_base_url, API_KEY, "gpt-4o-mini", client=http_client)
    assert isinstance(chat, ChatModel)
    user = "Maria will send the Lisbon budget on 2026-03-14."
    result = await chat.complete_json("Structure this.", user, schema=SCHEMA, schema_name="structure", request_key="c")
    await chat.aclose()
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    jsonschema_rs.validate(SCHEMA, result.data)
    assert result.provider == "openai" and result.model == "gpt-4o-mini"
    assert result.usage["calls"] == 1
    assert result.usage["tokens_in"] == math.ceil((len("Structure this.") + 1 + len(user)) / 4)
    assert result.usage["tokens_out"] > 0
    assert sim.stats()["route_keys"]["chat"] == {"c": 1}


async def test_embedder_returns_unit_vectors_in_order(sim: SimulatorURL, http_client: httpx.AsyncClient) -> None:
    embedder = OpenAIEmbedder(
        sim.openai_base_url, API_KEY, "text-embedding-3-small", client=http_client, dimensions=64, batch_size=2
    )
    assert isinstance(embedder, Embedder) and embedder.dimensions == 64
    texts = ["Maria", "Tom", "Lisbon", "Maria"]
    result = await embedder.embed(texts, request_key="e")
    await embedder.aclose()
    assert len(result.vectors) == 4 and all(len(v) == 64 for v in result.vectors)
    assert result.vectors[0] == result.vectors[3] != result.vectors[1]
    assert all(math.isclose(sum(x * x for x in v), 1, rel_tol=1e-3) for v in result.vectors)
    assert result.usage["calls"] == 2 and result.usage["tokens_in"] == 7  # ceil(len/4) per input
    assert sim.stats()["route_keys"]["embeddings"] == {"e": 1, "e#1": 1}


async def test_embedder_learns_unknown_dimensions_from_the_first_answer(
    sim: SimulatorURL, http_client: httpx.AsyncClient
) -> None:
    embedder = OpenAIEmbedder(sim.openai_base_url, API_KEY, "nomic-embed-text", client=http_client)
    assert embedder.dimensions == 0
    assert (await embedder.embed([])).vectors == []
    await embedder.embed(["x"])
    assert embedder.dimensions == 1536
    await embedder.aclose()


async def test_hosted_vad_streams_the_file(
    sim: SimulatorURL, http_client: httpx.AsyncClient, speech_pcm: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "audio.pcm"
    path.write_bytes(speech_pcm * 20)  # 2 minutes
    vad = HostedVAD(sim, API_KEY, client=http_client)
    assert isinstance(vad, VoiceActivityDetector)
    spans = await vad.detect(str(path), request_key="v")
    await vad.aclose()
    assert len(spans) == 40
    assert spans[0].start == pytest.approx(0.4, abs=0.05) and spans[0].end == pytest.approx(2.6, abs=0.05)
    assert spans[-1].end == pytest.approx(119.6, abs=0.05)
    assert sim.stats()["route_keys"]["vad"] == {"v": 1}


async def test_concurrent_calls_are_counted_once_per_key(
    sim: SimulatorURL, http_client: httpx.AsyncClient, speech_pcm: bytes
) -> None:
    sim.configure({"time_scale": 1, "routes": {"deepgram": {"median_seconds": 0.3, "p95_seconds": 0.3}}})
    sim.configure({"routes": {"deepgram": {"per_audio_second": 0}}})
    stt = DeepgramTranscriber(sim, API_KEY, client=http_client)
    await asyncio.gather(*(stt.transcribe(speech_pcm, request_key=f"t[{i}]") for i in range(8)))
    await stt.aclose()
    stats = sim.stats()
    assert stats["route_keys"]["deepgram"] == {f"t[{i}]": 1 for i in range(8)}
    assert stats["peak_in_flight"] == 8
