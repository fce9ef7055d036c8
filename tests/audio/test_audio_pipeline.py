"""The audio pipeline through the API with the offline providers: conversations, timelines, silence, bad input,
clips that fail for good, and input files kept until the job is deleted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audio_support import (
    MEETING,
    api,
    example,
    fast_settings,
    pcm16k,
    result_of,
    submit,
    wait_job,
    wav_bytes,
    word_recall,
)

from ingestd import errors
from ingestd.pipelines import audio, build_pipelines
from ingestd.pipelines.audio.run import default_providers
from ingestd.providers.base import Transcript
from ingestd.settings import Settings
from ingestd.store import open_store
from ingestd.store.protocol import JobStore

FOLDERS = [
    {"name": "Work", "description": "projects, clients, reports, the launch plan and the budget"},
    {"name": "Sports", "description": "games, matches and scores"},
]


async def _blob_exists(store: JobStore, ref: str) -> bool:
    try:
        async for _ in store.blobs.open(ref):
            break
    except errors.NotFound:
        return False
    return True


async def test_recordings_become_structured_conversations(store: JobStore) -> None:
    """A meeting (one conversation) and a recording with a 150 s silence (two), on SQLite and PostgreSQL."""
    settings = fast_settings(store.url)
    files = [("team-meeting.ogg", example("team-meeting.ogg")), ("two.webm", example("two-conversations.webm"))]
    async with api(store, settings) as client:
        job_id = await submit(client, files, {"folders": FOLDERS, "vocabulary": ["Maria"]})
        stored = await store.get_job(job_id)  # sized by its uploads, for the ETA behind Retry-After
        assert stored is not None and stored.units == pytest.approx(sum(len(b) for _, b in files) / 1e6)
        job = await wait_job(client, job_id)
        assert job["status"] == "succeeded", job["error"]
        result = await result_of(client, job_id)
        refs = [f.blob for f in (await store.get_job(job_id)).files]  # type: ignore[union-attr]
        assert all([await _blob_exists(store, r) for r in refs])  # kept while the finished job is kept
        assert (await client.delete(f"/v1/jobs/{job_id}")).status_code == 204
        assert not any([await _blob_exists(store, r) for r in refs])  # deleted with it
    meeting, game, report = result["conversations"]
    assert [c["file"] for c in (meeting, game, report)] == [0, 1, 1]
    assert word_recall(" ".join(MEETING), meeting["text"]) >= 0.75, meeting["text"]
    assert meeting["category"] == "work" and meeting["folder"] == "Work" and not meeting["discard"]
    assert any("supplier" in a["description"] for a in meeting["action_items"]), meeting["action_items"]
    assert any("demo" in e["title"].lower() for e in meeting["events"]), meeting["events"]
    assert game["end"] + 120 < report["start"]  # split at the silence longer than the gap
    assert "home team" in game["text"] and "report" in report["text"]
    assert game["folder"] == "Sports" and report["folder"] == "Work"
    assert [f["format"] for f in result["files"]] == ["ogg/opus", "webm/opus"]
    assert result["failed_clips"] == [] and all(c["complete"] for c in result["conversations"])
    stages = job["usage"]["stages"]
    assert stages["transcribe"]["faster-whisper-tiny.en"]["calls"] == result["clips"] == 3
    assert stages["speech"]["silero-vad-v6"]["audio_seconds"] == pytest.approx(result["audio_seconds"], abs=0.01)


async def test_files_captured_back_to_back_make_one_conversation(tmp_path: Path) -> None:
    """Two pieces of one recording, given their capture times, share a timeline: one conversation over both."""
    samples = pcm16k("voice-memo.flac")
    cut = int(np.argmin(np.abs(samples[len(samples) // 2 : len(samples) // 2 + 8000]))) + len(samples) // 2
    files = [("part1.wav", wav_bytes(samples[:cut])), ("part2.wav", wav_bytes(samples[cut:]))]
    seconds = cut / 16000
    meta = {
        "part1.wav": {"captured_at": "2026-11-23T08:00:00+00:00"},
        "part2.wav": {"captured_at": f"2026-11-23T08:00:{seconds:06.3f}+00:00"},
    }
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url)) as client:
            job = await wait_job(client, await submit(client, files, meta=meta))
            assert job["status"] == "succeeded", job["error"]
            result = await result_of(client, job["id"])
    finally:
        await store.close()
    [conversation] = result["conversations"]
    assert (conversation["file"], conversation["end_file"]) == (0, 1)
    assert {s["file"] for s in conversation["transcript"]} == {0, 1}
    assert conversation["started_at"].startswith("2026-11-23T08:00:0")
    assert "milk" in conversation["text"] and "Thursday" in conversation["text"]


async def test_a_recording_without_speech_has_no_conversations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url)) as client:
            job = await wait_job(client, await submit(client, [("quiet-room.wav", example("quiet-room.wav"))]))
            result = await result_of(client, job["id"])
    finally:
        await store.close()
    assert job["status"] == "succeeded", job["error"]
    assert result["conversations"] == [] and result["clips"] == 0
    assert result["files"][0]["duration"] == pytest.approx(4.0, abs=0.01)
    assert result["speech_seconds"] == 0


def _damaged(data: bytes, start: float = 0.3, end: float = 0.7) -> bytes:
    noise = np.random.default_rng(1).integers(0, 256, len(data), dtype=np.uint8).tobytes()
    lo, hi = int(len(data) * start), int(len(data) * end)
    return data[:lo] + noise[lo:hi] + data[hi:]


def _bad_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, content type, what the error must say)."""
    mp3, ogg = example("voice-memo.mp3"), example("team-meeting.ogg")
    wav = wav_bytes(pcm16k("voice-memo.flac"))
    return {
        "empty.wav": (b"", "audio/wav", "empty"),
        "notes.mp3": (b"These are my meeting notes, not a recording.\n" * 50, "audio/mpeg", "not a readable audio"),
        "photo.ogg": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "audio/ogg", "no audio stream"),
        "mislabelled.wav": (mp3, "audio/wav", "labelled as wav (audio/wav) but its content is mp3"),
        "cut.wav": (wav[: len(wav) // 2], "audio/wav", "truncated"),
        "cut.ogg": (ogg[: len(ogg) // 2], "audio/ogg", "truncated"),
        "cut.m4a": (example("voice-memo.m4a")[:15000], "audio/mp4", "not a readable audio file"),
        "damaged.mp3": (_damaged(mp3), "audio/mpeg", "corrupt"),
        "damaged.flac": (_damaged(example("voice-memo.flac")), "audio/flac", "corrupt"),
        "raw-without-rate.s16le": (b"\x00\x01" * 8000, "application/octet-stream", "raw PCM needs its sample_rate"),
    }


async def test_unusable_files_fail_at_decode_and_the_worker_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    bad = _bad_files()
    try:
        async with api(store, fast_settings(url)) as client:
            ids = {}
            for name, (data, content_type, _) in bad.items():
                ids[name] = await submit(client, [(name, data)], content_types={name: content_type})
            jobs = {name: await wait_job(client, job_id) for name, job_id in ids.items()}
            good = await wait_job(client, await submit(client, [("memo.flac", example("voice-memo.flac"))]))
    finally:
        await store.close()
    for name, job in jobs.items():
        assert job["status"] == "failed", (name, job)
        error: dict[str, Any] = job["error"]
        assert error["stage"] == "decode", (name, error)
        assert name in error["detail"] and bad[name][2] in error["detail"], (name, error["detail"])
    assert good["status"] == "succeeded", good["error"]


class _RefusesOneClip:
    """The offline transcriber, except that the service refuses clip ``index`` for good while ``refusing``; counts
    the calls it takes per request key (the provider bill)."""

    def __init__(self, index: int) -> None:
        self.inner = default_providers(Settings()).stt
        self.name = self.inner.name
        self.index = index
        self.refusing = True
        self.calls: Counter[str] = Counter()

    async def transcribe(self, pcm: bytes, **kwargs: Any) -> Transcript:
        key = str(kwargs.get("request_key", ""))
        self.calls[key.rsplit(":", 1)[-1]] += 1
        if self.refusing and key.endswith(f"transcribe[{self.index}]"):
            raise errors.PermanentError("the service rejected this clip (HTTP 400)")
        return await self.inner.transcribe(pcm, **kwargs)


async def test_a_clip_that_fails_for_good_leaves_the_job_partial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    settings = fast_settings(url)
    base = default_providers(settings)
    stt = _RefusesOneClip(1)
    providers = audio.AudioProviders(base.vad, stt, base.analyzer, 1)
    pipelines = {**build_pipelines(settings), "audio": audio.build(settings, providers)}
    store = await open_store(url)
    try:
        async with api(store, settings, pipelines) as client:
            job_id = await submit(client, [("two.webm", example("two-conversations.webm"))])
            job = await wait_job(client, job_id)
            result = await result_of(client, job_id)
            first_calls = dict(stt.calls)
            stt.refusing = False  # the service takes the clip now: a retry pays for that clip alone
            assert (await client.post(f"/v1/jobs/{job_id}/retry")).status_code == 202
            retried = await wait_job(client, job_id)
            after = await result_of(client, job_id)
    finally:
        await store.close()
    assert first_calls == {"transcribe[0]": 1, "transcribe[1]": 1}
    assert retried["status"] == "succeeded" and stt.calls == {"transcribe[0]": 1, "transcribe[1]": 2}
    assert after["failed_clips"] == [] and all(c["complete"] for c in after["conversations"])
    assert job["status"] == "partial", job["error"]
    assert [item["key"] for item in result["failed_items"]] == ["transcribe[1]"]
    assert "rejected this clip" in result["failed_items"][0]["error"]["detail"]
    assert result["failed_clips"] == [1]
    kept, lost = result["conversations"]
    assert kept["complete"] and "home team" in kept["text"] and kept["title"]
    assert not lost["complete"] and lost["failed_clips"] == [1] and lost["transcript"] == []
    assert lost["discard"] is None and "failed" in lost["discard_reason"] and lost["structured_by"] is None


async def test_bad_options_and_a_job_without_files_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url)) as client:
            for bad in ({"colour": "red"}, {"language": "english please"}, {"conversation_gap_seconds": -1}):
                response = await client.post("/v1/pipelines/audio/jobs", json=bad)
                assert response.status_code == 422, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
            response = await client.post("/v1/pipelines/audio/jobs", json={"language": "en"})
    finally:
        await store.close()
    assert response.status_code == 422, response.text  # refused at the door, not a job that fails later
    assert "at least one file" in response.json()["detail"]
