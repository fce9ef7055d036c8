"""What each simulated provider answers, in the real services' shapes (Deepgram, OpenAI, a hosted VAD).

A producer reads and checks the request, then builds the answer; ``app.Simulator`` adds latency and faults.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ingestd.sim import content, speech
from ingestd.sim.state import SimState


class BadRequest(ValueError):
    """The request is malformed: the simulator answers 400, as the real service would."""


@dataclass(frozen=True)
class Produced:
    payload: dict[str, Any] | str
    audio_seconds: float = 0.0


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


async def _read_audio(body: bytes, state: SimState, *, raw_pcm: bool = False) -> speech.Audio:
    threshold = state.config.vad_threshold_db
    try:
        return await anyio.to_thread.run_sync(lambda: speech.read_audio(body, raw_pcm=raw_pcm, threshold_db=threshold))
    except speech.BadAudio as exc:
        raise BadRequest(str(exc)) from exc


async def deepgram_listen(request: Request, state: SimState) -> Produced:
    """``POST /v1/listen``: Deepgram pre-recorded transcription of the audio body."""
    query = request.query_params
    keywords = [k.rsplit(":", 1)[0] for k in query.getlist("keywords") + query.getlist("keyterm")]
    audio = await _read_audio(await request.body(), state, raw_pcm=query.get("encoding") == "linear16")
    utterances = speech.make_utterances(
        audio, seed=state.config.seed, words_per_second=state.config.words_per_second, keywords=keywords
    )
    diarize = _truthy(query.get("diarize"))
    words = [_dg_word(w, s, e, u.speaker if diarize else None) for u in utterances for w, s, e in u.words]
    alternative = {"transcript": " ".join(u.text for u in utterances), "confidence": 0.93, "words": words}
    channel: dict[str, Any] = {"alternatives": [alternative]}
    if _truthy(query.get("detect_language")):
        channel["detected_language"] = "en"
        channel["language_confidence"] = 0.97
    results: dict[str, Any] = {"channels": [channel]}
    if _truthy(query.get("utterances")):
        results["utterances"] = [_dg_utterance(u, i, diarize) for i, u in enumerate(utterances)]
    model = query.get("model", "base")
    metadata = {
        "request_id": hashlib.sha256(audio.digest + str(time.time_ns()).encode()).hexdigest()[:32],
        "sha256": audio.digest.hex(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "duration": round(audio.seconds, 3),
        "channels": 1,
        "models": [model],
        "model_info": {model: {"name": model, "version": "sim", "arch": "sim"}},
    }
    return Produced({"metadata": metadata, "results": results}, audio.seconds)


def _dg_word(word: str, start: float, end: float, speaker: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"word": word.strip(".,?!").lower(), "start": start, "end": end, "confidence": 0.93}
    out["punctuated_word"] = word
    if speaker is not None:
        out["speaker"] = speaker
        out["speaker_confidence"] = 0.8
    return out


def _dg_utterance(u: speech.Utterance, index: int, diarize: bool) -> dict[str, Any]:
    speaker = u.speaker if diarize else 0
    return {
        "start": u.start,
        "end": u.end,
        "confidence": 0.93,
        "channel": 0,
        "transcript": u.text,
        "words": [_dg_word(w, s, e, speaker if diarize else None) for w, s, e in u.words],
        "speaker": speaker,
        "id": f"utt-{index}",
    }


async def transcriptions(request: Request, state: SimState) -> Produced:
    """``POST /v1/audio/transcriptions``: OpenAI speech to text (multipart ``file`` + ``model``)."""
    async with request.form() as form:
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, UploadFile):
            raise BadRequest("'file' is required (multipart upload)")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required")
        body = await upload.read()
        fmt, language = str(form.get("response_format") or "json"), form.get("language")
        prompt = str(form.get("prompt") or "")
    audio = await _read_audio(body, state)
    # Our client sends "Vocabulary: a, b."; echo the listed terms so tests can see they arrived.
    listed = prompt.split(":", 1)[-1]
    keywords = [w.strip(" .") for w in listed.split(",") if w.strip(" .")][:5]
    utterances = speech.make_utterances(
        audio, seed=state.config.seed, words_per_second=state.config.words_per_second, keywords=keywords
    )
    text = " ".join(u.text for u in utterances)
    usage = {"type": "duration", "seconds": int(audio.seconds + 0.999)}
    if fmt == "text":
        return Produced(text, audio.seconds)
    if fmt == "json":
        return Produced({"text": text, "usage": usage}, audio.seconds)
    if fmt != "verbose_json":
        raise BadRequest(f"response_format {fmt!r} is not supported by the simulator (json, verbose_json, text)")
    segments = [_oa_segment(u, i) for i, u in enumerate(utterances)]
    payload = {
        "task": "transcribe",
        "language": str(language or "english"),
        "duration": round(audio.seconds, 3),
        "text": text,
        "segments": segments,
        "usage": usage,
    }
    return Produced(payload, audio.seconds)


def _oa_segment(u: speech.Utterance, index: int) -> dict[str, Any]:
    return {
        "id": index,
        "seek": 0,
        "start": u.start,
        "end": u.end,
        "text": " " + u.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.4,
        "no_speech_prob": 0.01,
    }


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _message_text(message: Any) -> str:
    body = message.get("content") if isinstance(message, dict) else None
    if isinstance(body, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in body if isinstance(p, dict))
    return str(body or "")


async def chat_completions(request: Request, state: SimState) -> Produced:
    """``POST /v1/chat/completions``: an answer that validates against ``response_format``'s JSON schema."""
    body = await _json_body(request)
    messages, model = body.get("messages"), body.get("model")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required")
    everything = "\n".join(_message_text(m) for m in messages)
    users = [_message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    prompt = "\n".join(users) or everything
    answer = _chat_answer(body.get("response_format"), prompt, state.config.seed)
    usage = {"prompt_tokens": content.token_count(everything), "completion_tokens": content.token_count(answer)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": answer, "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }
    payload = {
        "id": "chatcmpl-" + hashlib.sha256((everything + answer).encode()).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
        "system_fingerprint": "fp_ingestd_sim",
    }
    return Produced(payload)


def _chat_answer(response_format: Any, prompt: str, seed: int) -> str:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict) or not spec.get("name"):
            raise BadRequest("response_format.json_schema needs 'name' and an object 'schema'")
        value = content.fill_schema(spec["schema"], prompt, seed=seed, name=str(spec["name"]))
        return json.dumps(value, ensure_ascii=False)
    words = content.fill_schema({"type": "string", "description": "text"}, prompt, seed=seed, name="text")
    if kind == "json_object":
        return json.dumps({"text": words})
    return str(words)


async def embeddings(request: Request, state: SimState) -> Produced:
    """``POST /v1/embeddings``: deterministic unit vectors from each input's text."""
    body = await _json_body(request)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("'input' must be a string or a non-empty array of strings")
    if not isinstance(body.get("model"), str):
        raise BadRequest("'model' is required")
    dims = body.get("dimensions") or state.config.embedding_dimensions
    if not isinstance(dims, int) or dims < 1:
        raise BadRequest("'dimensions' must be a positive integer")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector: Any = content.embed_text(text, dims, seed=state.config.seed)
        if as_base64:
            vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(content.token_count(t) for t in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return Produced({"object": "list", "data": data, "model": body["model"], "usage": usage})


async def vad(request: Request, state: SimState) -> Produced:
    """``POST /v1/vad``: speech segments of a raw PCM16 16 kHz mono body, read as a stream."""
    rate = request.query_params.get("sample_rate", "16000")
    if rate != "16000":
        raise BadRequest(f"sample_rate must be 16000 (got {rate})")
    try:
        threshold = float(request.query_params.get("threshold_db", state.config.vad_threshold_db))
    except ValueError as exc:
        raise BadRequest(f"threshold_db must be a number: {exc}") from exc
    detector = speech.EnergyDetector(threshold)
    async for chunk in request.stream():
        detector.feed(chunk)
    segments = [{"start": s, "end": e} for s, e in detector.finish()]
    seconds = detector.samples / speech.SAMPLE_RATE
    return Produced({"segments": segments, "duration": round(seconds, 3)}, seconds)
