"""The offline structure of a conversation with speakers (owners of action items, sentences cut on the model's
segments, titles cut at a clause), the vocabulary prompt that keeps Whisper's punctuation, and split model files
joined once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audio_support import pcm16k

from ingestd import errors
from ingestd.pipelines.audio import extractive
from ingestd.providers import whisper_models
from ingestd.providers.whisper import WhisperTranscriber, vocabulary_prompt

FRIDAY = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


def _segments(*turns: tuple[int, str]) -> list[dict[str, object]]:
    return [{"speaker": f"speaker_{who}", "text": text} for who, text in turns]


def test_owners_are_who_took_the_item_on() -> None:
    segments = _segments(
        (1, "Thanks for coming."),
        (1, "Could you send the contract to Omar by Monday?"),
        (2, "Sure, no problem."),
        (2, "I'll also book the venue for the workshop next Thursday at two."),
        (1, "Great. We should order lunch tomorrow."),
    )
    text = " ".join(str(s["text"]) for s in segments)
    out = extractive.structure(text, FRIDAY, segments)
    owners = {a["description"]: (a["owner"], a["due"]) for a in out["action_items"]}
    assert owners == {
        "Could you send the contract to Omar by Monday?": ("speaker_2", "2026-11-30"),  # asked of the next speaker
        "I'll also book the venue for the workshop next Thursday at two": ("speaker_2", "2026-12-03"),
        "We should order lunch tomorrow": ("speaker_1", "2026-11-28"),
    }
    events = {e["title"]: e["starts_at"] for e in out["events"]}
    assert events["Workshop"] == "2026-12-03T14:00:00"
    assert extractive.structure("Maria will send the slides.", None)["action_items"][0]["owner"] == "Maria"
    # The text names the owner: the name, not the speaker who reported it (nor a pronoun or "This").
    named = _segments((2, "Maria will send me the design mock-up by Friday."), (1, "This should take an hour."))
    items = extractive.structure(" ".join(str(s["text"]) for s in named), FRIDAY, named)["action_items"]
    assert [(a["owner"], a["due"]) for a in items] == [("Maria", "2026-12-04"), ("speaker_1", None)]


def test_sentences_are_cut_on_segments_when_punctuation_is_missing() -> None:
    segments = _segments((1, "we need to ship the release"), (1, "i will write the notes"), (2, "please test it"))
    said = extractive.spoken_sentences(" ".join(str(s["text"]) for s in segments), segments)
    assert [(s.text, s.speaker) for s in said] == [
        ("we need to ship the release", "speaker_1"),
        ("i will write the notes", "speaker_1"),
        ("please test it", "speaker_2"),
    ]
    # With punctuation, a segment that stops mid-sentence joins the next one of the same speaker.
    punctuated = _segments((1, "The budget for the"), (1, "new office is due. Fine?"), (2, "Yes."))
    said = extractive.spoken_sentences("The budget for the new office is due. Fine? Yes.", punctuated)
    assert [s.text for s in said] == ["The budget for the new office is due.", "Fine?", "Yes."]


def test_titles_skip_greetings_and_stop_at_a_clause() -> None:
    said = [
        "Hi everyone.",
        "Thanks for joining.",
        "The supplier moved the delivery of the new espresso machines to the second week of March, "
        "which means the opening slips too.",
    ]
    title = extractive.title_of(said)
    assert title == "The supplier moved the delivery of the new espresso machines…"
    clauses = ["Reviewing the quarterly infrastructure consolidation and decommissioning programme for all regions"]
    assert extractive.title_of(clauses) == "Reviewing the quarterly infrastructure consolidation"
    one_clause = ["Reviewing the quarterly consolidation programme for every single region of the whole company"]
    assert extractive.title_of(one_clause) == "Reviewing the quarterly consolidation programme for every…"


def test_vocabulary_is_a_punctuated_prompt_and_whisper_keeps_punctuation() -> None:
    assert vocabulary_prompt(["Kubernetes", " Deepgram, ", ""]) == "Glossary: Kubernetes, Deepgram."
    assert vocabulary_prompt([]) is None
    stt = WhisperTranscriber(model="tiny.en")
    text = stt.transcribe_sync(pcm16k("team-meeting.ogg").tobytes(), ["Maria", "Omar", "supplier"]).text
    assert len(re.findall(r"[.?!]", text)) >= 4 and re.search(r"\bMaria\b", text), text


def test_a_split_model_is_joined_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTD_MODEL_CACHE", str(tmp_path / "cache"))
    one, two = tmp_path / "one" / "data", tmp_path / "two" / "data"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    (one / "model.bin.part1").write_bytes(b"first-")
    (two / "model.bin.part2").write_bytes(b"second")
    (two / "config.json").write_text("{}")
    spec = whisper_models.WhisperModelSpec("test", ("one", "two"), False, 1)
    joined = whisper_models._joined(spec, [one, two])
    assert (joined / "model.bin").read_bytes() == b"first-second" and (joined / "config.json").exists()
    assert whisper_models._joined(spec, [one, two]) == joined  # the second call finds it
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [joined.name]  # no staging folder left behind
    with pytest.raises(errors.PermanentError, match=r"tiny\.en"):
        whisper_models.spec_of("large-v3")
