"""The speakers stage runs beside transcription (in a child process), and a job's words are the same with
diarization on as with it off: the voice encoder's numpy work never perturbs Whisper's decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audio_support import api, fast_settings, pcm16k, result_of, submit, wait_job, wav_bytes

from ingestd.store import open_store

RATE = 16_000
SECONDS = 12  # the meeting's first two lines: two voices


def _words(result: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    return [(w["word"], w["start"], w["end"], w["confidence"]) for c in result["conversations"] for w in c["words"]]


async def test_words_are_the_same_with_diarization_on_and_off(tmp_path: Path) -> None:
    """One short two-voice recording, twice: the words, their times and confidences match; only the speakers
    differ (two with diarization, none without)."""
    audio = wav_bytes(pcm16k("team-meeting.ogg")[: SECONDS * RATE])
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    results = []
    try:
        async with api(store, fast_settings(url)) as client:
            for options in ({"diarize": True}, {"diarize": False}):
                job = await wait_job(client, await submit(client, [("meeting.wav", audio)], options), timeout=120)
                assert job["status"] == "succeeded", job["error"]
                results.append(await result_of(client, job["id"]))
    finally:
        await store.close()
    on, off = results
    assert _words(on) == _words(off) and len(_words(on)) > 10
    assert len(on["speakers"]) == 2 and off["speakers"] == []
    assert {w["speaker"] for c in on["conversations"] for w in c["words"]} == {"speaker_1", "speaker_2"}
