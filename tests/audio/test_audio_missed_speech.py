"""Speech that Whisper skipped is found: a clip's stretch of over 3 s without a word is transcribed again.

The segments below are what faster-whisper tiny.en returned for ``examples/team-meeting.ogg`` (36.8 s, with the
vocabulary prompt) while another thread was busy with numpy: it ended its 30 s window after "next to" at 15.9 s,
and "Please remember to update..." and "I will call the supplier..." were never decoded.
"""

from __future__ import annotations

from ingestd.providers.base import TranscriptSegment, TranscriptWord
from ingestd.providers.whisper import missed


def _segment(start: float, end: float, text: str) -> TranscriptSegment:
    words = text.split()
    step = (end - start) / len(words)
    timed = tuple(TranscriptWord(w, start + i * step, start + (i + 1) * step) for i, w in enumerate(words))
    return TranscriptSegment(start, end, text, words=timed)


SKIPPED = [
    _segment(0.524, 6.384, "Good morning everyone. Let's remove the lunch plan for the mobile app."),
    _segment(6.764, 10.144, "Maria will send me up David's design markup, I Friday."),
    _segment(12.184, 15.884, "We need to book the conference room for the client demo next to"),
]


def test_the_stretch_after_an_early_end_is_found() -> None:
    assert missed(SKIPPED, 36.8) == [(15.884, 36.8)]


def test_pauses_of_a_conversation_are_not_speech_missed() -> None:
    whole = [*SKIPPED, _segment(17.5, 24.1, "Please remember to update the budget."), _segment(25.0, 34.0, "I will.")]
    assert missed(whole, 36.8) == []  # gaps of 2.3 s at most, and 2.8 s at the end
    assert missed([], 2.5) == []
    assert missed([], 4.0) == [(0.0, 4.0)]
