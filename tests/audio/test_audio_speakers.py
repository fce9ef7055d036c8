"""Who said what, through the API with the offline providers: speakers that hold across files, words with times,
utterances, the channels of a call kept apart, and speaker and channel options checked at the door."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audio_support import MEETING, MEMO, api, fast_settings, pcm16k, result_of, submit, wait_job, word_recall

from ingestd.pipelines.audio import diarize
from ingestd.store import open_store

RATE = 16_000
CUT_SECONDS = 18.5  # in the pause between the meeting's third and fourth lines


async def _run(tmp_path: Path, files: list[tuple[str, bytes]], options: dict[str, Any]) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url)) as client:
            job = await wait_job(client, await submit(client, files, options), timeout=120)
            assert job["status"] == "succeeded", job["error"]
            return await result_of(client, job["id"])
    finally:
        await store.close()


def _wav(samples: np.ndarray) -> bytes:
    """16 kHz WAV; ``samples`` is (n,) for mono or (n, channels)."""
    frames = samples.reshape(len(samples), -1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames.astype("<i2").tobytes())
    return buffer.getvalue()


def _turns(conversation: dict[str, Any]) -> list[str]:
    """The speaker of each utterance, in order."""
    return [u["speaker"] for u in conversation["utterances"]]


async def test_two_voices_keep_their_labels_across_two_files(tmp_path: Path) -> None:
    """The six-line, two-voice meeting uploaded as two files (no capture times: two conversations)."""
    meeting = pcm16k("team-meeting.ogg")
    cut = int(CUT_SECONDS * RATE)
    files = [("first.wav", _wav(meeting[:cut])), ("second.wav", _wav(meeting[cut:]))]
    result = await _run(tmp_path, files, {})
    first, second = result["conversations"]
    assert [s["id"] for s in result["speakers"]] == ["speaker_1", "speaker_2"]
    assert _turns(first) == ["speaker_1", "speaker_2", "speaker_1"], first["utterances"]
    assert _turns(second) == ["speaker_2", "speaker_1", "speaker_2"], second["utterances"]
    for conversation in (first, second):
        words = conversation["words"]
        assert all(w["start"] <= w["end"] and 0 < w["confidence"] <= 1 for w in words)
        assert [w["start"] for w in words] == sorted(w["start"] for w in words)
        for segment in conversation["transcript"]:  # no segment straddles a change of speaker
            inside = [w for w in words if segment["start"] <= w["start"] and w["end"] <= segment["end"]]
            assert {w["speaker"] for w in inside} == {segment["speaker"]}, segment
    assert word_recall(" ".join(MEETING), first["text"] + " " + second["text"]) >= 0.7


def _voices(rng: np.random.Generator, centres: list[np.ndarray], each: int) -> np.ndarray:
    rows = [c + rng.normal(0, 0.04, (each, len(c))) for c in centres]
    out = np.concatenate(rows)
    return np.asarray(out / np.linalg.norm(out, axis=1, keepdims=True))


def test_the_speaker_count_follows_the_voices_and_the_hint() -> None:
    """Clustering alone (no audio): three well-separated voices are found as three; a hint overrides."""
    rng = np.random.default_rng(7)
    centres = [np.abs(rng.normal(0, 1, 256)) for _ in range(3)]
    three = _voices(rng, centres, 20)
    assert len(set(diarize.cluster(three, diarize.SpeakerCount()).tolist())) == 3
    assert len(set(diarize.cluster(three, diarize.SpeakerCount(1, 2)).tolist())) == 2
    assert len(set(diarize.cluster(three, diarize.SpeakerCount(1, 1)).tolist())) == 1
    one = _voices(rng, centres[:1], 30)
    assert set(diarize.cluster(one, diarize.SpeakerCount()).tolist()) == {0}
    assert len(set(diarize.cluster(one, diarize.SpeakerCount(2, 2)).tolist())) == 2  # asked for two: two


def test_many_windows_are_clustered_on_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_CLUSTERED`` windows, a sample is clustered and every window joins its nearest cluster."""
    monkeypatch.setattr(diarize, "MAX_CLUSTERED", 40)
    rng = np.random.default_rng(3)
    centres = [np.abs(rng.normal(0, 1, 256)) for _ in range(2)]
    vectors = _voices(rng, centres, 100)  # 200 windows: 100 of each voice
    labels = diarize.cluster(vectors, diarize.SpeakerCount())
    assert len(labels) == 200 and len(set(labels[:100].tolist())) == 1 and len(set(labels[100:].tolist())) == 1
    assert labels[0] != labels[-1]


async def test_separate_channels_give_each_channel_its_own_words(tmp_path: Path) -> None:
    """A stereo call whose parties talk over each other: the voice memo on the left, the meeting on the right."""
    memo, meeting = pcm16k("voice-memo.flac"), pcm16k("team-meeting.ogg")[: int(10.5 * RATE)]
    stereo = np.zeros((int(12 * RATE), 2), dtype=np.int16)
    stereo[: len(memo), 0] = memo
    stereo[RATE : RATE + len(meeting), 1] = meeting  # starts 1 s later, overlapping the memo
    result = await _run(tmp_path, [("call.wav", _wav(stereo))], {"channels": "separate"})
    [conversation] = result["conversations"]
    words = conversation["words"]
    left = " ".join(w["word"] for w in words if w["speaker"] == "channel_0")
    right = " ".join(w["word"] for w in words if w["speaker"] == "channel_1")
    assert {w["speaker"] for w in words} == {"channel_0", "channel_1"}
    assert word_recall(MEMO, left) >= 0.7, left
    assert word_recall(" ".join(MEETING[:2]), right) >= 0.6, right
    assert "milk" not in right.lower() and "maria" not in left.lower()
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)  # the channels merged by time
    assert result["files"][0]["source_channels"] == 2


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"speakers": 0}, "speakers"),
        ({"speakers": "two"}, "speakers"),
        ({"min_speakers": 3, "max_speakers": 2}, "max_speakers"),
        ({"speakers": 2, "min_speakers": 3}, "min_speakers"),
        ({"max_speakers": 51}, "max_speakers"),
        ({"channels": "stereo"}, "channels"),
        ({"diarize": "sometimes"}, "diarize"),
    ],
)
async def test_bad_speaker_and_channel_options_are_a_422_naming_the_field(
    tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url), worker=False) as client:
            [file] = [("memo.flac", b"fLaC not checked before the options")]
            response = await client.post(
                "/v1/pipelines/audio/jobs",
                data={"input": json.dumps(options)},
                files=[("files", (file[0], file[1], "audio/flac"))],
            )
    finally:
        await store.close()
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text, response.text


def test_short_windows_place_a_turn_shorter_than_the_long_windows() -> None:
    """A 0.6 s reply between two long turns: the long windows all straddle it, the short ones scored against the
    two voices' centroids give it its own turn, with its edges within a short window's hop."""
    voices = np.eye(2)
    spans = [(round(s, 2), round(s + 0.8, 2)) for s in np.arange(0.0, 5.21, 0.2)]  # 0.8 s windows every 0.2 s
    reply = (2.5, 3.1)
    scores = np.array([voices[1] if reply[0] <= (s + e) / 2 < reply[1] else voices[0] for s, e in spans])
    turns = diarize.resegment([[0.0, 6.0]], spans, scores, ["speaker_1", "speaker_2"])
    assert [t[2] for t in turns] == ["speaker_1", "speaker_2", "speaker_1"], turns
    assert abs(turns[1][0] - reply[0]) <= 0.2 and abs(turns[1][1] - reply[1]) <= 0.2, turns
    assert turns[0][0] == 0.0 and turns[-1][1] == 6.0
