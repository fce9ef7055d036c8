"""The prompt block of ``/context``: within a word budget, the messages that answer and a few facts.

Each message shows who said it and when ("Caroline, 8 May 2023: …"), with relative dates resolved where the
resolver found them, and only its sentences that match the question (and the ones right after, which often
hold the answer) when it is long: a message cut to what matters leaves room for the next one. Messages are
grouped under their day, in time order. Facts come last: only those whose messages are not shown and whose words
meet the question's. Every id cited in the JSON is shown in the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory.dates import day_label
from ingestd.pipelines.memory.graph import Fact, Message, SearchHit
from ingestd.pipelines.memory.retrieve import ASKS_WHEN, Recall, content_terms

TOP_CAP = 60  # words of one of the first messages (the best hits are shown nearly whole)
CAP = 32  # words of any later message up to MID
TAIL_CAP = 20  # words of a message ranked after MID (its best sentence: room for one more message)
TOP, MID = 3, 12
FACT_SHARE = 0.15  # at most this share of the budget goes to facts
MAX_FACTS = 6
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# A question asking for a time (``ASKS_WHEN``): a sentence carrying a resolved date ("on Sunday [12 February 2023]")
# then counts one more match, so that a long message cut to fit keeps the sentence that dates it.
_RESOLVED = re.compile(r"\[[^\]]*\d{4}\]")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


@dataclass
class Block:
    """A rendered block: its text, the messages and facts it shows, and its size in words."""

    text: str
    messages: list[tuple[Message, str]] = field(default_factory=list)  # (message, the text shown)
    facts: list[Fact] = field(default_factory=list)
    words: int = 0


def words(text: str) -> int:
    return len(text.split())


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _matches(sentence: str, stems: set[str]) -> int:
    return len({_stem(w) for w in hybrid.query_terms(sentence, limit=200)} & stems)


def snippet(content: str, stems: set[str], cap: int, dated: bool = False) -> str:
    """``content`` if it fits in ``cap`` words, else its best-matching sentence and those after it (then before
    it) while they fit; a sentence longer than the cap is cut. ``dated``: a sentence with a resolved date counts
    one match more."""
    if words(content) <= cap:
        return content.strip()
    sentences = [piece for s in _SENTENCE.split(content.strip()) if s for piece in _pieces(s, cap)]
    scores = [_matches(s, stems) + (1 if dated and _RESOLVED.search(s) else 0) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    chosen, used = [best], words(sentences[best])
    order = [*range(best + 1, len(sentences)), *range(best - 1, -1, -1)]
    for i in sorted(order, key=lambda i: (-scores[i], i - best if i > best else 2 * (best - i))):
        if used + words(sentences[i]) <= cap:
            chosen.append(i)
            used += words(sentences[i])
    text = " ".join(sentences[i] for i in sorted(chosen))
    return " ".join(text.split()[:cap]) + (" …" if words(text) > cap else "")


def _pieces(sentence: str, cap: int) -> list[str]:
    """A sentence longer than ``cap`` words in pieces of at most half of it (a run-on turn without full stops
    would otherwise show only its first words, wherever the answer sits)."""
    tokens = sentence.split()
    if len(tokens) <= cap:
        return [sentence]
    size = max(cap // 2, 1)
    return [" ".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]


def message_line(message: Message, text: str, names: dict[str, str] | None = None) -> str:
    """``Caroline: text``: no bullet and, where ``names`` gives one, the speaker's short name (every word of the
    budget a cue takes is one the messages do not get)."""
    return f"{(names or {}).get(message.speaker, message.speaker)}: {text}"


def short_names(speakers: Sequence[str]) -> dict[str, str]:
    """Each speaker's first name where no other speaker has that first name ("Maya Okafor" -> "Maya")."""
    firsts = [s.split()[0] if s.split() else s for s in speakers]
    return {s: f if firsts.count(f) == 1 else s for s, f in zip(speakers, firsts, strict=True)}


def day_line(message: Message) -> str:
    return f"{day_label(message.at)}:"


def fact_line(fact: Fact) -> str:
    when = f" ({day_label(fact.valid_at)})" if fact.valid_at else ""
    past = f" (until {day_label(fact.invalid_at)})" if fact.invalid_at else ""
    return f"- {fact.subject} {fact.predicate.replace('_', ' ')} {fact.object}{when}{past}"


def _candidates(found: Recall, dated: bool = False) -> list[tuple[Message, int]]:
    """Messages in the order they compete for room, each with its word cap (a question for a time keeps ``CAP``
    to the end: its answer is one dated message, and a cut can lose the date)."""
    tail = CAP if dated else TAIL_CAP
    caps = [TOP_CAP if rank < TOP else CAP if rank < MID else tail for rank in range(len(found.messages))]
    return [(hit.message, cap) for hit, cap in zip(found.messages, caps, strict=True)]


def build(user_id: str, query: str, found: Recall, max_words: int) -> Block:
    """The block for ``found`` in at most ``max_words`` words (the frame included)."""
    head, tail = f'<memory user="{user_id}">', "</memory>"
    budget = max_words - words(head) - words(tail) - 2  # the two section titles
    stems = {_stem(t) for t in hybrid.query_terms(query, limit=32)}
    dated = bool(ASKS_WHEN.search(query))
    candidates = _candidates(found, dated)
    names = short_names(sorted({m.speaker for m, _ in candidates}))
    shown: list[tuple[Message, str]] = []
    used = _fill(candidates, stems, budget - int(max_words * FACT_SHARE), shown, names, dated)
    about = {_stem(t) for t in content_terms(query, list(found.speakers))}
    facts = _facts(found.facts, {m.id for m, _ in shown}, about, budget - used)
    _fill(candidates, stems, budget - used - sum(words(fact_line(f)) for f in facts), shown, names, dated)
    return _render(head, tail, shown, facts, names)


def _fill(
    candidates: list[tuple[Message, int]],
    stems: set[str],
    room: int,
    shown: list[tuple[Message, str]],
    names: dict[str, str],
    dated: bool = False,
) -> int:
    """Add to ``shown`` the candidates not in it that fit in ``room`` words, best first; the words added."""
    taken = {m.key for m, _ in shown}
    days = {day_line(m) for m, _ in shown}
    used = 0
    for message, cap in candidates:
        if message.key in taken:
            continue
        text = snippet(message.content, stems, cap, dated)
        day = day_line(message)
        size = words(message_line(message, text, names)) + (0 if day in days else words(day))
        if used + size <= room:
            shown.append((message, text))
            days.add(day)
            used += size
    return used


def _facts(hits: Sequence[SearchHit], shown_ids: set[str], about: set[str], room: int) -> list[Fact]:
    """Facts whose messages are not shown and whose subject or object meets the question's words (a speaker's
    name aside)."""
    chosen: list[Fact] = []
    lines: set[str] = set()
    for hit in hits:
        fact = hit.fact
        line = fact_line(fact)
        if set(fact.message_ids) <= shown_ids or line in lines or len(chosen) >= MAX_FACTS:
            continue
        if not _matches(f"{fact.subject} {fact.object}", about):
            continue  # a shared verb alone ("get" in "Kwame get 71" for "When did Claire get married?") is chance
        if words(line) > room:
            break
        chosen.append(fact)
        lines.add(line)
        room -= words(line)
    return chosen


def _render(head: str, tail: str, shown: list[tuple[Message, str]], facts: list[Fact], names: dict[str, str]) -> Block:
    ordered = sorted(shown, key=lambda p: (p[0].at, p[0].session_id, p[0].index))
    lines = [head]
    if ordered:
        lines.append("Conversation:")
        for message, text in ordered:
            if day_line(message) not in lines:
                lines.append(day_line(message))
            lines.append(message_line(message, text, names))
    if facts:
        lines += ["Facts:", *(fact_line(f) for f in facts)]
    if not ordered and not facts:
        lines.append("Nothing relevant is remembered.")
    lines.append(tail)
    text = "\n".join(lines)
    return Block(text, ordered, facts, words(text))
