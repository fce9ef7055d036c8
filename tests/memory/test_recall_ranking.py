"""How recall ranks a conversation's messages: the shares neighbours pass on, and short messages alone."""

from __future__ import annotations

from datetime import UTC, datetime

from ingestd.pipelines.memory.graph import Message
from ingestd.pipelines.memory.retrieve import SAME_SPEAKER_SHARE, _smoothed, hop_terms


def _turn(index: int, speaker: str, content: str) -> Message:
    at = datetime(2023, 7, 14, 12, index, tzinfo=UTC)
    return Message(str(index), f"D10:{index}", "s10", index, "user", speaker, content, at, ())


def test_a_speakers_turn_gains_from_their_next_turn_across_the_others_reply() -> None:
    turns = [
        _turn(6, "Rosa", "I joined a running club in Washington Park. I met someone there."),
        _turn(7, "Marcus", "Ooh. Someone?"),
        _turn(8, "Rosa", "His name is Jonah, he's a park ranger and he runs way faster than me."),
    ]
    scores = _smoothed(turns, {"8": 1.0})
    assert scores[turns[0]] == SAME_SPEAKER_SHARE  # "How did Rosa meet Jonah?" reaches the club
    assert scores[turns[0]] > scores[turns[1]]


def test_a_message_of_few_words_weighs_less_on_its_own_than_one_that_says_something() -> None:
    short = _turn(1, "Omar", "That's a good dog.")
    said = _turn(5, "Omar", "No. I adopted a kitten last Sunday, his name is Basil and he's a menace.")
    scores = _smoothed([short, said], {"1": 1.0, "5": 1.0})
    assert scores[short] < scores[said] == 1.0


def test_the_second_hop_searches_the_names_the_best_message_mentions_and_the_question_does_not() -> None:
    best = ["And I have a cat! A colleague found a kitten, and I've called her Mochi. Meera, she bit my toe on Monday."]
    terms = hop_terms(best, "What trouble has Meera's kitten caused?", ["Meera Iyer", "Callum Fraser"])
    assert terms == ["mochi"]  # not the speaker, not a weekday, not the sentence's first word
    assert hop_terms(best, "What did Mochi break?", ["Meera Iyer"]) == []  # already asked about
