"""Every supported format, end to end through the API with the offline providers (Silero VAD, Whisper tiny.en,
extractive structuring): the words spoken come back, in one conversation, honestly labelled."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from audio_support import MEMO, api, example, fast_settings, pcm16k, result_of, submit, wait_job, wav_bytes, word_recall

from ingestd.pipelines.audio import extractive

FORMATS = {
    "voice-memo.mp3": "mp3/mp3float",
    "voice-memo.m4a": "mp4/aac",
    "voice-memo.flac": "flac/flac",
    "voice-memo.wav": "wav/pcm_s16le",
    "voice-memo-8k.s16le": "raw/s16le",
}


def _recording(name: str) -> bytes:
    if name == "voice-memo.wav":  # not committed: made from the FLAC, so the suite needs no ffmpeg
        return wav_bytes(pcm16k("voice-memo.flac"))
    return example(name)


@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_each_format_is_transcribed_and_structured(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    meta = {name: {"sample_rate": 8000, "captured_at": "2026-11-23T08:00:00Z"}} if name.endswith(".s16le") else {}
    from ingestd.store import open_store

    store = await open_store(url)
    try:
        async with api(store, fast_settings(url)) as client:
            job_id = await submit(client, [(name, _recording(name))], meta=meta)
            job = await wait_job(client, job_id)
            assert job["status"] == "succeeded", job["error"]
            result = await result_of(client, job_id)
    finally:
        await store.close()
    assert result["files"][0]["format"] == FORMATS[name]
    assert 7.0 < result["files"][0]["duration"] < 9.0
    stt = result["providers"]["stt"]
    assert stt.startswith("faster-whisper-")  # the packaged model the server defaults to
    assert result["providers"] == {
        "vad": "silero-vad-v6",
        "stt": stt,
        "speakers": "resemblyzer-ge2e",
        "structure": "extractive-offline",
        "structure_method": "extractive",
    }
    [conversation] = result["conversations"]
    assert word_recall(MEMO, conversation["text"]) >= 0.8, conversation["text"]
    assert conversation["complete"] and conversation["structured_by"] == "extractive"
    assert conversation["category"] in ("shopping", "health") and not conversation["discard"]  # milk, dentist
    assert conversation["title"] and conversation["transcript"][0]["start"] < 1.0
    dated = [e["starts_at"] for e in conversation["events"]] + [a["due"] for a in conversation["action_items"]]
    spoken = [e["when_text"] for e in conversation["events"]] + [a["due_text"] for a in conversation["action_items"]]
    assert "Thursday" in spoken
    if meta:  # a capture time makes times absolute and resolves "Thursday" against it (a Monday)
        assert conversation["started_at"].startswith("2026-11-23T08:00")
        assert "2026-11-26" in dated and conversation["dates_from"] == "captured_at"
    else:  # no capture time: "Thursday" is the one after the upload, and the result says so
        thursday = extractive.resolve_day("thursday", "", datetime.fromisoformat(job["created_at"]).date())
        assert conversation["started_at"] is None and conversation["dates_from"] == "job_created_at"
        assert thursday.isoformat() in {d[:10] for d in dated if d}
    assert job["usage"]["providers"][stt]["audio_seconds"] > 5
