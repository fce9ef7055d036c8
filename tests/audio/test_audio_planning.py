"""The pure parts of the audio pipeline: conversations and clips from speech spans, clip times back to file
times, and the offline extractive structuring (dates resolved against the capture time)."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestd.pipelines.audio import extractive
from ingestd.pipelines.audio.plan import ClipMap, plan_work

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_spans_closer_than_the_gap_are_one_conversation() -> None:
    plan = plan_work([[(0, 10), (20, 30), (200, 210)]], [None], gap_seconds=120, max_clip_seconds=300)
    assert [c["clips"] for c in plan["conversations"]] == [[0], [1]]
    assert plan["clips"][0]["spans"] == [[0, 10.3], [19.7, 30.3]]  # speech and 0.3 s around it, not the silence
    assert plan["clips"][1]["spans"] == [[199.7, 210.3]]


def test_long_speech_is_cut_into_clips_of_at_most_max_seconds() -> None:
    plan = plan_work([[(0, 250)]], [None], gap_seconds=120, max_clip_seconds=100)
    assert [c["spans"] for c in plan["clips"]] == [[[0, 100]], [[100, 200]], [[200, 250.3]]]
    assert plan["conversations"] == [{"index": 0, "clips": [0, 1, 2]}]


def test_a_short_pause_stays_in_the_clip_and_a_long_one_is_cut_out() -> None:
    """Pauses under ``BRIDGE_SECONDS`` are transcribed with the speech around them; longer ones are left out;
    each span gains 0.3 s on both sides, never into its neighbour."""
    plan = plan_work([[(0, 4), (5.5, 9), (20, 25), (26, 95)]], [None], gap_seconds=120, max_clip_seconds=60)
    assert [c["spans"] for c in plan["clips"]] == [[[0, 9.3], [19.7, 25.3]], [[25.7, 85.7]], [[85.7, 95.3]]]


def test_files_with_capture_times_share_a_timeline() -> None:
    second = datetime(2026, 11, 23, 9, 1, tzinfo=UTC)  # starts 60 s after the first
    plan = plan_work([[(50, 60)], [(5, 15)]], [MONDAY, second], gap_seconds=30, max_clip_seconds=300)
    assert plan["conversations"] == [{"index": 0, "clips": [0, 1]}]  # 60 s -> 65 s: a 5 s pause
    assert [c["file"] for c in plan["clips"]] == [0, 1]
    apart = plan_work([[(50, 60)], [(5, 15)]], [MONDAY, None], gap_seconds=30, max_clip_seconds=300)
    assert len(apart["conversations"]) == 2  # without every capture time, each file is its own timeline


def test_clip_times_map_back_to_the_file() -> None:
    clip = ClipMap([[10.0, 12.0], [20.0, 25.0]])  # 2 s then 5 s of speech, joined: 7 s
    assert clip.duration == 7.0
    assert clip.to_file(1.0) == 11.0
    assert clip.to_file(3.0) == 21.0
    assert clip.to_file(2.0, is_end=True) == 12.0  # an end on the join stays in the span before
    assert clip.to_file(2.0) == 20.0


def test_extractive_structure_finds_commitments_and_dates() -> None:
    text = (
        "Good morning everyone, let's review the launch plan. Maria will send the mockups by Friday. "
        "We need to book the room for the client demo next Tuesday at ten."
    )
    out = extractive.structure(text, MONDAY)
    assert out["title"] == "Let's review the launch plan"
    assert out["category"] == "work"
    dues = {a["due_text"]: a["due"] for a in out["action_items"]}
    assert dues["by Friday"] == "2026-11-27"
    assert dues["next Tuesday"] == "2026-12-01"
    [event] = out["events"]
    assert event["title"] == "Client demo" and event["starts_at"] == "2026-12-01T10:00:00"


def test_extractive_folder_and_discard() -> None:
    folders = [{"name": "Home", "description": "groceries and the house"}, {"name": "Work", "description": "clients"}]
    assert extractive.choose_folder("We should buy groceries for the house", folders)["folder"] == "Home"
    assert extractive.choose_folder("The weather is nice", folders)["folder"] is None
    assert extractive.discard_check("Yeah, okay, thanks.")["discard"] is True
    assert extractive.discard_check(" ".join(["word"] * 20))["discard"] is False
