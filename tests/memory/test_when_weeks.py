"""A weekday in a named week ("Thursday next week") and a week after a weekday ("a week from Saturday")."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestd.pipelines.memory.when import annotate

THURSDAY = datetime(2025, 3, 27, 21, 16, tzinfo=UTC)  # Thursday 27 March 2025


def test_a_weekday_of_last_this_or_next_week_is_that_day_of_that_week() -> None:
    said = {
        "They want to talk to me on Thursday next week.": "on Thursday next week [3 April 2025].",
        "Next week on Monday we fly.": "Next week on Monday [31 March 2025] we fly.",
        "I saw her on Tuesday last week.": "on Tuesday last week [18 March 2025].",
        "See you Sunday this week!": "Sunday this week [30 March 2025]!",
    }
    for text, labelled in said.items():
        assert labelled in annotate(text, THURSDAY), text


def test_a_week_from_a_weekday_is_the_coming_one_and_a_week_more() -> None:
    assert "a week from Saturday [5 April 2025]" in annotate("We open a week from Saturday.", THURSDAY)
    assert "a week on Friday [4 April 2025]" in annotate("The party is a week on Friday.", THURSDAY)
    assert "[" not in annotate("We meet every Saturday of the week.", THURSDAY)
