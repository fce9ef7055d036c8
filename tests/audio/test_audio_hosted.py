"""The audio pipeline on hosted providers (the simulator on loopback): Deepgram or OpenAI-compatible speech to
text, hosted VAD, chat completions with structured output; and a worker killed with SIGKILL during
``transcribe``, after which no clip is paid for twice except the one in flight."""

from __future__ import annotations

import asyncio
import glob
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from audio_support import FAST, api, example, fast_settings, result_of, submit, wait_job
from workers import WorkerProcess, ingestd_env

from ingestd.sim.testing import provider_env, provider_settings, running_simulator
from ingestd.store import open_store

FOLDERS = [{"name": "Work", "description": "projects and clients"}]


@pytest.mark.parametrize("stt", ["deepgram", "openai"])
async def test_hosted_providers_each_call_paid_once(tmp_path: Path, stt: str) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        with running_simulator({"time_scale": 0.01}) as sim:
            settings = fast_settings(url, **provider_settings(sim, stt=stt, embedding="offline"))
            files = [("meeting.ogg", example("team-meeting.ogg")), ("two.webm", example("two-conversations.webm"))]
            async with api(store, settings) as client:
                job_id = await submit(client, files, {"folders": FOLDERS, "speakers": 2})
                job = await wait_job(client, job_id)
                result = await result_of(client, job_id)
            stats = sim.stats()
    finally:
        await store.close()
    assert job["status"] == "succeeded", job["error"]
    route = "deepgram" if stt == "deepgram" else "transcriptions"
    expected = {"vad": "hosted-vad", "stt": stt, "speakers": "resemblyzer-ge2e", "structure": "openai"}
    assert result["providers"] == {**expected, "structure_method": "llm"}
    conversations = result["conversations"]
    assert len(conversations) == 3 and result["clips"] == 3
    for conv in conversations:
        assert conv["structured_by"] == "llm" and conv["title"] and conv["transcript"]
        assert conv["folder"] in (None, "Work")
        assert set(conv["usage"]["llm_calls"]) == {"structure", "folder", "discard"}
        assert all(call["tokens_in"] > 0 for call in conv["usage"]["llm_calls"].values())
        if stt == "deepgram":  # Deepgram's per-clip labels (speaker_0...) mapped onto the job's two speakers
            assert {s["speaker"] for s in conv["transcript"]} <= {"speaker_1", "speaker_2"}, conv["transcript"]
            assert conv["words"] and all(w["speaker"] in ("speaker_1", "speaker_2") for w in conv["words"])
    calls: dict[str, Counter[str]] = {r: Counter(stats["route_keys"].get(r, {})) for r in (route, "chat", "vad")}
    assert calls[route] == {f"{job_id}:transcribe[{i}]": 1 for i in range(3)}
    assert calls["vad"] == {f"{job_id}:speech[0]": 1, f"{job_id}:speech[1]": 1}
    questions = ("structure", "folder", "discard")
    assert calls["chat"] == {f"{job_id}:structure[{i}].{q}": 1 for i in range(3) for q in questions}
    stages = job["usage"]["stages"]
    assert stages["transcribe"][stt]["calls"] == 3 and stages["transcribe"][stt]["audio_seconds"] > 20
    assert stages["structure"]["openai"]["calls"] == 9 and stages["structure"]["openai"]["tokens_out"] > 0


def _worker(url: str, name: str, env: dict[str, str], log_dir: Path) -> WorkerProcess:
    return WorkerProcess(url, log_dir, name, {**ingestd_env(FAST), **env})


async def _transcribed(store: Any, job_id: str) -> int:
    events = await store.read_events(job_id)
    return sum(1 for e in events if e.type == "step.finished" and e.data["key"].startswith("transcribe["))


async def test_sigkill_during_transcribe_pays_each_clip_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    fixed = {"median_seconds": 0.25, "p95_seconds": 0.25, "per_audio_second": 0.0}
    workers: list[WorkerProcess] = []
    try:
        with running_simulator({"routes": {"deepgram": fixed, "vad": {**fixed, "median_seconds": 0.01}}}) as sim:
            env = provider_env(sim, llm="offline", embedding="offline")
            async with api(store, fast_settings(url), worker=False) as client:  # the workers are processes
                options = {"max_clip_seconds": 2, "transcribe_concurrency": 1}
                job_id = await submit(client, [("meeting.ogg", example("team-meeting.ogg"))], options)
                workers.append(_worker(url, "doomed", env, tmp_path))
                deadline = time.monotonic() + 60
                while await _transcribed(store, job_id) < 3:
                    assert time.monotonic() < deadline, workers[0].output()
                    await asyncio.sleep(0.02)
                workers[0].stop()  # SIGKILL
                done_before = await _transcribed(store, job_id)
                # The heir's lease need not run out fast (nobody takes over from it): with FAST's 2 s, a loaded
                # machine's late heartbeats let its own claim take the job again, paying the clip in flight twice.
                workers.append(_worker(url, "heir", {**env, "INGESTD_LEASE_SECONDS": "30"}, tmp_path))
                job = await wait_job(client, job_id, timeout=90)
                result = await result_of(client, job_id)
            stats = sim.stats()
    finally:
        for worker in workers:
            worker.stop()
        await store.close()
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 2 and 3 <= done_before < result["clips"]
    paid = Counter(stats["route_keys"]["deepgram"])
    assert set(paid) == {f"{job_id}:transcribe[{i}]" for i in range(result["clips"])}
    twice = [key for key, n in paid.items() if n > 1]
    assert len(twice) <= 1 and max(paid.values()) <= 2, paid  # at most the clip in flight at the kill
    assert result["clips"] >= 8
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"ingestd-audio-{job_id}-*"))  # no decoded audio left


async def test_every_format_on_the_simulator(tmp_path: Path) -> None:
    """One job, one file per format (and a silent one): each decodes, and each is heard and transcribed."""
    from audio_support import pcm16k, wav_bytes

    names = ["team-meeting.ogg", "two-conversations.webm", "voice-memo.mp3", "voice-memo.m4a", "voice-memo.flac"]
    files = [(n, example(n)) for n in names]
    files += [("voice-memo.wav", wav_bytes(pcm16k("voice-memo.flac"))), ("memo.s16le", example("voice-memo-8k.s16le"))]
    files += [("quiet-room.wav", example("quiet-room.wav"))]
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        with running_simulator({"time_scale": 0.01}) as sim:
            settings = fast_settings(url, **provider_settings(sim, embedding="offline"))
            async with api(store, settings) as client:
                job_id = await submit(client, files, meta={"memo.s16le": {"sample_rate": 8000}})
                job = await wait_job(client, job_id)
                result = await result_of(client, job_id)
    finally:
        await store.close()
    assert job["status"] == "succeeded", job["error"]
    formats = [f["format"].split("/")[0] for f in result["files"]]
    assert formats == ["ogg", "webm", "mp3", "mp4", "flac", "wav", "raw", "wav"]
    per_file = Counter(c["file"] for c in result["conversations"])
    assert per_file == {0: 1, 1: 2, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}  # nothing from the quiet room
    assert all(c["transcript"] and c["structured_by"] == "llm" for c in result["conversations"])


async def test_rate_limited_calls_are_retried_and_each_step_succeeds_once(tmp_path: Path) -> None:
    """Every first call per request key answers 429 with Retry-After: each step is retried once, then done."""
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    first_fails = {"fail_first_per_key": 1, "fail_first_status": 429, "retry_after_seconds": 0.5}
    try:
        with running_simulator({"time_scale": 0.01, "routes": {"deepgram": first_fails, "chat": first_fails}}) as sim:
            settings = fast_settings(url, **provider_settings(sim, embedding="offline"))
            async with api(store, settings) as client:
                job_id = await submit(client, [("two.webm", example("two-conversations.webm"))])
                job = await wait_job(client, job_id)
            events = [e.type for e in await store.read_events(job_id)]
            stats = sim.stats()
    finally:
        await store.close()
    assert job["status"] == "succeeded", job["error"]
    assert set(stats["route_keys"]["deepgram"].values()) == {2}  # the 429, then the answer
    assert len(stats["route_keys"]["chat"]) == 4 and set(stats["route_keys"]["chat"].values()) == {2}  # no folders
    assert stats["routes"]["deepgram"]["outcomes"] == {"429": 2, "ok": 2}
    assert events.count("step.retrying") == 6


async def test_a_job_canceled_during_transcribe_stops_and_the_worker_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    slow = {"median_seconds": 30.0, "p95_seconds": 30.0, "per_audio_second": 0.0}
    try:
        with running_simulator({"routes": {"deepgram": slow}}) as sim:
            settings = fast_settings(url, **provider_settings(sim, llm="offline", embedding="offline"))
            async with api(store, settings) as client:
                job_id = await submit(client, [("meeting.ogg", example("team-meeting.ogg"))])
                deadline = time.monotonic() + 30
                while sim.stats()["routes"]["deepgram"]["in_flight"] == 0:
                    assert time.monotonic() < deadline, "transcription never started"
                    await asyncio.sleep(0.02)
                asked = time.monotonic()
                assert (await client.post(f"/v1/jobs/{job_id}/cancel")).status_code == 202
                job = await wait_job(client, job_id, timeout=10)
                stopped = time.monotonic() - asked
                sim.configure({"routes": {"deepgram": {"median_seconds": 0.01, "p95_seconds": 0.01}}})
                after = await wait_job(client, await submit(client, [("memo.flac", example("voice-memo.flac"))]))
    finally:
        await store.close()
    assert job["status"] == "canceled" and stopped < 5  # not after the 30 s call
    assert after["status"] == "succeeded", after["error"]
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"ingestd-audio-{job_id}-*"))
