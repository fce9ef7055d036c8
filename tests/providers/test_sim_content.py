"""What the simulator answers: schema-valid JSON, unit vectors, speech found in audio, Deepgram/OpenAI shapes."""

from __future__ import annotations

import io
import json
import math
import wave
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field
from sim_audio import bursts

from ingestd.sim import content, speech
from ingestd.sim.testing import SimulatorURL

jsonschema_rs = pytest.importorskip("jsonschema_rs")


class ActionItem(BaseModel):
    description: str
    due: str | None = Field(None, json_schema_extra={"format": "date"})
    priority: int = Field(ge=1, le=3)


class Structure(BaseModel):
    title: str = Field(max_length=40)
    overview: str
    emoji: str
    category: Literal["work", "personal", "health"]
    action_items: list[ActionItem]
    tags: list[str] = Field(min_length=2, max_length=2)
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    confidence: float = Field(ge=0, le=1)
    discard: bool


STRICT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entities", "facts"],
    "properties": {
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type"],
                "properties": {"name": {"type": "string"}, "type": {"enum": ["person", "place", "org"]}},
            },
        },
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["subject", "valid_at", "invalid_at"],
                "properties": {
                    "subject": {"type": "string", "minLength": 3},
                    "valid_at": {"type": ["string", "null"], "format": "date-time"},
                    "invalid_at": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
            },
        },
    },
}


@pytest.mark.parametrize("schema", [Structure.model_json_schema(), STRICT], ids=["pydantic", "strict"])
@pytest.mark.parametrize("seed", range(5))
def test_filled_values_validate_against_the_schema(schema: dict[str, Any], seed: int) -> None:
    prompt = "Maria and Tom discussed the Lisbon trip on 2026-03-14 and the budget review."
    value = content.fill_schema(schema, prompt, seed=seed, name="s")
    jsonschema_rs.validate(schema, value)
    assert value == content.fill_schema(schema, prompt, seed=seed, name="s")  # deterministic


def test_strings_come_from_the_prompt_and_dates_near_its_date() -> None:
    prompt = "Maria booked flights to Lisbon on 2026-03-14."
    value = content.fill_schema(Structure.model_json_schema(), prompt, seed=1)
    words = set(prompt.replace(".", "").split())
    assert set(value["title"].split()) <= words | {w.capitalize() for w in words}
    assert value["created_at"].startswith("2026-03")
    assert value["category"] in ("work", "personal", "health")
    assert 1 <= len(value["action_items"]) <= 3


def test_embeddings_are_unit_vectors_and_similar_spellings_are_close() -> None:
    a, b, c = (content.embed_text(t, 256, seed=0) for t in ("Jon Smith", "John Smith", "quarterly budget"))
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-4)
    assert a == content.embed_text("Jon Smith", 256, seed=0)

    def cos(u: list[float], v: list[float]) -> float:
        return sum(x * y for x, y in zip(u, v, strict=True))

    assert cos(a, b) > 0.6 > 0.2 > cos(a, c)


def test_energy_detector_finds_the_loud_stretches_in_a_stream() -> None:
    pcm = bursts([(1.0, False), (1.5, True), (2.0, False), (0.1, True), (1.0, False), (1.0, True)])
    detector = speech.EnergyDetector()
    for i in range(0, len(pcm), 1001):  # odd chunk sizes: frames straddle chunks
        detector.feed(pcm[i : i + 1001])
    spans = detector.finish()
    assert len(spans) == 2  # the 0.1 s blip is too short
    (s1, e1), (s2, e2) = spans
    assert s1 == pytest.approx(0.9, abs=0.05) and e1 == pytest.approx(2.6, abs=0.05)
    assert s2 == pytest.approx(5.5, abs=0.05) and e2 == pytest.approx(6.6, abs=0.05)
    assert speech.EnergyDetector().finish() == []


def wav_bytes(pcm: bytes, rate: int = 16_000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buffer.getvalue()


def test_deepgram_shape(sim: SimulatorURL, speech_pcm: bytes) -> None:
    params = {"model": "nova-2", "diarize": "true", "utterances": "true", "keywords": "Kubernetes:2"}
    r = httpx.post(
        sim + "/v1/listen", params=params, content=wav_bytes(speech_pcm), headers={"Authorization": "Token k"}
    )
    body = r.json()
    assert body["metadata"]["duration"] == 6.0
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"].startswith("Kubernetes")
    assert all({"word", "start", "end", "speaker"} <= set(w) for w in alternative["words"])
    utterances = body["results"]["utterances"]
    assert utterances and all({"start", "end", "transcript", "speaker"} <= set(u) for u in utterances)
    assert all(0.3 <= u["start"] < u["end"] <= 5.7 for u in utterances)
    again = httpx.post(sim + "/v1/listen", params=params, content=wav_bytes(speech_pcm), headers={"Authorization": "T"})
    assert again.json()["results"] == body["results"]  # the same audio, the same transcript


def test_silence_gives_an_empty_transcript(sim: SimulatorURL) -> None:
    silence = wav_bytes(bursts([(3.0, False)]))
    r = httpx.post(sim + "/v1/listen", params={"utterances": "true"}, content=silence, headers={"Authorization": "T"})
    assert r.json()["results"]["channels"][0]["alternatives"][0]["transcript"] == ""
    assert r.json()["results"]["utterances"] == []


def test_stereo_44k_wav_duration_comes_from_the_header(sim: SimulatorURL) -> None:
    stereo = b"\x10\x00" * 44_100 * 2 * 2  # 2 s, 2 channels
    r = httpx.post(sim + "/v1/listen", content=wav_bytes(stereo, 44_100, 2), headers={"Authorization": "T"})
    assert r.json()["metadata"]["duration"] == 2.0


def test_openai_transcription_shapes(sim: SimulatorURL, speech_pcm: bytes) -> None:
    files = {"file": ("a.wav", wav_bytes(speech_pcm), "audio/wav")}
    auth = {"Authorization": "Bearer k"}
    verbose = httpx.post(
        sim + "/v1/audio/transcriptions",
        data={"model": "whisper-1", "response_format": "verbose_json"},
        files=files,
        headers=auth,
    ).json()
    assert verbose["duration"] == 6.0 and verbose["segments"] and verbose["text"]
    plain = httpx.post(sim + "/v1/audio/transcriptions", data={"model": "w"}, files=files, headers=auth).json()
    assert plain["text"] == verbose["text"]
    missing = httpx.post(sim + "/v1/audio/transcriptions", data={"model": "w"}, headers=auth)
    assert missing.status_code == 400


def test_chat_answer_shape_and_usage(sim: SimulatorURL) -> None:
    body = {
        "model": "gpt-x",
        "messages": [{"role": "system", "content": "Extract."}, {"role": "user", "content": "Maria met Tom " * 20}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "g", "schema": STRICT, "strict": True}},
    }
    answer = httpx.post(sim + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}).json()
    assert answer["object"] == "chat.completion" and answer["model"] == "gpt-x"
    data = json.loads(answer["choices"][0]["message"]["content"])
    jsonschema_rs.validate(STRICT, data)
    assert answer["usage"]["prompt_tokens"] == math.ceil((len("Extract.") + 1 + len("Maria met Tom " * 20)) / 4)
    assert answer["usage"]["completion_tokens"] > 0


def test_embeddings_route(sim: SimulatorURL) -> None:
    auth = {"Authorization": "Bearer k"}
    body = httpx.post(sim + "/v1/embeddings", json={"model": "e", "input": ["a", "b"], "dimensions": 8}, headers=auth)
    data = body.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and len(data[0]["embedding"]) == 8
    default = httpx.post(sim + "/v1/embeddings", json={"model": "e", "input": "a"}, headers=auth).json()
    assert len(default["data"][0]["embedding"]) == 1536
    b64 = httpx.post(
        sim + "/v1/embeddings", json={"model": "e", "input": "a", "encoding_format": "base64"}, headers=auth
    )
    assert isinstance(b64.json()["data"][0]["embedding"], str)
