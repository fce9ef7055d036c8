"""The audio pipeline's result, assembled from the checkpoints (no provider calls, deterministic).

Times: ``start``/``end`` of a conversation and of each transcript segment are seconds in the segment's file
(``file`` is the index into ``files``); ``started_at``/``ended_at`` (and a segment's ``at``) are absolute ISO 8601
times, given when the file's ``captured_at`` was. See docs/pipelines/audio.md for the whole schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ingestd.models import JSON, StoredFile
from ingestd.pipeline import MapResult
from ingestd.pipelines.audio.inputs import AudioInput, captured_at
from ingestd.pipelines.audio.words import utterances

STRUCTURE_FIELDS = ("title", "overview", "emoji", "category", "action_items", "events")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _at(file: StoredFile, seconds: float) -> str | None:
    start = captured_at(file)
    return (start + timedelta(seconds=seconds)).isoformat() if start is not None else None


def conversation(
    files: Sequence[StoredFile], inp: AudioInput, plan: JSON, conv: JSON, done: Mapping[int, JSON]
) -> JSON:
    """What one conversation of the plan said: its transcript (from the clips in ``done``) and its times."""
    clips: list[JSON] = plan["clips"]
    own = [clips[i] for i in conv["clips"]]
    first, last = own[0], own[-1]
    outputs = [done[clip["index"]] for clip in own if clip["index"] in done]
    order = {f: i for i, f in enumerate(dict.fromkeys(c["file"] for c in own))}  # files in timeline order
    segments = _in_time([{**s, "at": _at(files[s["file"]], s["start"])} for o in outputs for s in o["segments"]], order)
    words = _in_time([w for o in outputs for w in o.get("words", [])], order)
    spoken = utterances(words)
    for utterance in spoken:
        utterance["at"] = _at(files[utterance["file"]], utterance["start"])
    languages = [done[c["index"]]["language"] for c in own if c["index"] in done]
    return {
        "index": conv["index"],
        "clips": conv["clips"],
        "failed_clips": [c["index"] for c in own if c["index"] not in done],
        "file": first["file"],
        "start": first["spans"][0][0],
        "end_file": last["file"],
        "end": last["spans"][-1][1],
        "started_at": _at(files[first["file"]], first["spans"][0][0]),
        "ended_at": _at(files[last["file"]], last["spans"][-1][1]),
        "language": inp.language or next((lang for lang in languages if lang), None),
        "segments": segments,
        "words": words,
        "utterances": spoken,
        "speakers": list(dict.fromkeys(s["speaker"] for s in segments if s["speaker"] is not None)),
        "text": " ".join(s["text"] for s in segments),
    }


def _in_time(items: list[JSON], order: Mapping[int, int]) -> list[JSON]:
    """Segments or words of a conversation by time (the channels of a call are transcribed apart)."""
    return sorted(items, key=lambda item: (order.get(item["file"], 0), item["start"]))


def conversations(files: Sequence[StoredFile], inp: AudioInput, plan: JSON, transcribed: MapResult[JSON]) -> list[JSON]:
    """Every conversation of the plan (see ``conversation``), from the clips that were transcribed."""
    return [conversation(files, inp, plan, conv, transcribed.ok) for conv in plan["conversations"]]


def _structured(conv: JSON, answer: JSON | None, error: JSON | None, method: str) -> JSON:
    fields: JSON = dict.fromkeys(STRUCTURE_FIELDS)
    usage: JSON = {}
    if answer is not None:
        structure = dict(answer["structure"] or {})
        usage = {q: answer[q]["usage"] for q in ("structure", "folder", "discard") if "usage" in (answer[q] or {})}
        structure.pop("usage", None)
        fields.update({k: structure.get(k) for k in STRUCTURE_FIELDS})
        fields["folder"] = answer["folder"]["folder"]
        fields["folder_reason"] = answer["folder"]["reason"]
        fields["discard"] = answer["discard"]["discard"]
        fields["discard_reason"] = answer["discard"]["reason"]
    fields["structured_by"] = method if answer is not None and answer["structure"] is not None else None
    if error is not None:
        fields["structure_error"] = error
    fields["usage"] = {"llm_calls": usage}
    return fields


def _conversation(
    conv: JSON, transcribed: MapResult[JSON], answer: JSON | None, error: JSON | None, method: str
) -> JSON:
    seconds = sum(transcribed.ok[i]["audio_seconds"] for i in conv["clips"] if i in transcribed.ok)
    body = {
        "index": conv["index"],
        "started_at": conv["started_at"],
        "ended_at": conv["ended_at"],
        "dates_from": "captured_at" if conv["started_at"] else "job_created_at",  # what "Friday" was resolved against
        "file": conv["file"],
        "start": conv["start"],
        "end_file": conv["end_file"],
        "end": conv["end"],
        "language": conv["language"],
        "clips": conv["clips"],
        "complete": not conv["failed_clips"] and error is None,
        "failed_clips": conv["failed_clips"],
        "speakers": conv["speakers"],
        "transcript": conv["segments"],
        "utterances": conv["utterances"],
        "words": conv["words"],
        "text": conv["text"],
        **_structured(conv, answer, error, method),
    }
    body["usage"]["audio_seconds"] = round(seconds, 3)
    return body


def _file(stored: StoredFile, decoded: JSON, speech: list[list[float]]) -> JSON:
    start = captured_at(stored)
    return {
        "name": stored.name,
        "format": decoded["format"],
        "duration": decoded["duration"],
        "source_sample_rate": decoded["source_sample_rate"],
        "source_channels": decoded["source_channels"],
        "captured_at": start.isoformat() if start else None,
        "speech_seconds": round(sum(e - s for s, e in speech), 3),
        "speech": speech,
    }


def assemble(
    stored: Sequence[StoredFile],
    decoded: list[JSON],
    plan: JSON,
    transcribed: MapResult[JSON],
    convs: list[JSON],
    structured: MapResult[JSON],
    providers: Mapping[str, str | None],
    method: str,
) -> JSON:
    """The job's result (see docs/pipelines/audio.md, "Result")."""
    files = [_file(f, d, s) for f, d, s in zip(stored, decoded, plan["speech"], strict=True)]
    out: list[Any] = [
        _conversation(c, transcribed, structured.ok.get(i), structured.failed.get(i), method)
        for i, c in enumerate(convs)
    ]
    return {
        "files": files,
        "audio_seconds": round(sum(f["duration"] for f in files), 3),
        "speech_seconds": round(sum(f["speech_seconds"] for f in files), 3),
        "providers": {**providers, "structure_method": method},
        "speakers": _speakers(out),
        "clips": len(plan["clips"]),
        "failed_clips": sorted(transcribed.failed),
        "conversations": out,
    }


def _speakers(conversations: list[JSON]) -> list[JSON]:
    """Every speaker of the job (labels hold across its conversations and files) and how long each spoke."""
    seconds: dict[str, float] = {}
    for conv in conversations:
        for seg in conv["transcript"]:
            if seg["speaker"] is not None:
                seconds[seg["speaker"]] = seconds.get(seg["speaker"], 0.0) + seg["end"] - seg["start"]
    return [{"id": k, "seconds": round(v, 3)} for k, v in seconds.items()]


__all__ = ["assemble", "conversation", "conversations", "parse_time"]
