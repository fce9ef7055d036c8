"""An audio job's transcript as SRT, WebVTT and text (``GET /v1/jobs/{id}/result?format=``), read back with real
subtitle parsers (``srt``, ``webvtt-py``), and the problems for a format we do not write or a result without a
transcript; the ``model`` option checked at the door."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import srt
import webvtt
from audio_support import api, example, fast_settings, result_of, submit, wait_job

from ingestd.store import open_store


async def _exports(tmp_path: Path) -> dict[str, Any]:
    """One job on the two-voice meeting, and the answers to each format; a silent job; a demo job."""
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    answers: dict[str, Any] = {}
    try:
        async with api(store, fast_settings(url)) as client:
            meeting = await wait_job(
                client, await submit(client, [("meeting.ogg", example("team-meeting.ogg"))], {"model": "tiny.en"}), 300
            )
            assert meeting["status"] == "succeeded", meeting["error"]
            answers["result"] = await result_of(client, meeting["id"])
            for fmt in ("srt", "vtt", "txt", "docx"):
                answers[fmt] = await client.get(f"/v1/jobs/{meeting['id']}/result", params={"format": fmt})
            quiet = await wait_job(client, await submit(client, [("quiet.wav", example("quiet-room.wav"))]), 300)
            answers["quiet"] = await client.get(f"/v1/jobs/{quiet['id']}/result", params={"format": "srt"})
            demo = await client.post(
                "/v1/pipelines/demo/jobs", json={"items": 1, "seconds": 0}, headers={"Prefer": "wait=10"}
            )
            answers["demo"] = await client.get(f"/v1/jobs/{demo.json()['id']}/result", params={"format": "vtt"})
            bad = {"input": '{"model": "large-v3"}'}
            files = [("files", ("m.ogg", example("team-meeting.ogg"), "audio/ogg"))]
            answers["bad_model"] = await client.post("/v1/pipelines/audio/jobs", data=bad, files=files)
    finally:
        await store.close()
    return answers


def _seconds(clock: str) -> float:
    hours, minutes, seconds = clock.split(":")
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3)


async def test_exports_carry_the_transcript_with_its_speakers_and_refuse_what_they_cannot(tmp_path: Path) -> None:
    answers = await _exports(tmp_path)
    _check_subtitles(answers)
    docx = answers["docx"]
    assert docx.status_code == 422 and docx.headers["content-type"] == "application/problem+json"
    assert ["query", "format"] in [e["loc"] for e in docx.json()["errors"]]
    for name in ("quiet", "demo"):  # silence has no transcript; a demo job is not an audio job
        answer = answers[name]
        assert answer.status_code == 409 and answer.headers["content-type"] == "application/problem+json"
        assert "no transcript" in answer.json()["detail"]
    bad = answers["bad_model"]
    assert bad.status_code == 422 and "model" in str(bad.json()["errors"]), bad.text


def _check_subtitles(answers: dict[str, Any]) -> None:
    assert answers["result"]["providers"]["stt"] == "faster-whisper-tiny.en"  # the job's model
    [conversation] = answers["result"]["conversations"]
    segments = conversation["transcript"]
    assert {s["speaker"] for s in segments} == {"speaker_1", "speaker_2"}, segments
    names = [f"Speaker {s['speaker'].split('_')[1]}" for s in segments]

    assert answers["srt"].status_code == 200
    assert answers["srt"].headers["content-type"].startswith("application/x-subrip")
    cues = list(srt.parse(answers["srt"].text))
    assert [c.content for c in cues] == [f"{n}: {s['text']}" for n, s in zip(names, segments, strict=True)]
    assert [round(c.start.total_seconds(), 3) for c in cues] == [round(s["start"], 3) for s in segments]
    assert all(c.end > c.start for c in cues)

    assert answers["vtt"].status_code == 200 and answers["vtt"].headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(answers["vtt"].text))
    assert [c.voice for c in captions] == names
    assert [html.unescape(c.text) for c in captions] == [s["text"] for s in segments]
    assert [_seconds(c.start) for c in captions] == [round(s["start"], 3) for s in segments]

    text = answers["txt"]
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    header, *lines = text.text.strip().splitlines()
    assert header.startswith("# ") and conversation["title"] in header
    assert {line.split(":")[0] for line in lines} == {"Speaker 1", "Speaker 2"}
    assert " ".join(line.split(": ", 1)[1] for line in lines) == " ".join(s["text"] for s in segments)
