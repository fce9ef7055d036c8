"""The tense a sentence speaks in, for a date written without a direction ("on Saturday", "in June").

"since" means past. Otherwise the tense cue nearest before the date in its sentence decides (else the nearest after
it): a past-tense verb ("went", "moved", "was") means past; a future cue ("will", "'ll", "going to", "next", "can
we", "is on", "booked", "is scheduled") means future; a present-tense clause ("I start", "he has", "starting in")
is read as present, which for a dated event speaks of the future ("I start in April", "the tables come on
Wednesday"). ``Context.reading`` reports these four readings (``none`` when the sentence has no cue, or when its
only past is a "was/were" about a booking: "the flights were $1,400 in September"); ``Context.tense`` folds them
into past or future, with the message's other sentences deciding when a sentence has no cue ("Thursday!"), and
past when they say nothing. Reported speech ("they said") is no cue; habits ("always", "usually", "every year") are
kept apart (``Context.habitual``).

Cues are read from words (a set lookup each), not from regular expressions over the text: it runs on every date.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Literal

from ingestd.pipelines.memory.day_spans import Choice

_IRREGULAR_PAST = frozenset(
    "went got came took made saw ran ate met left felt found gave told said thought bought brought caught sold sent"
    " spent built lost won wrote drove rode flew fell broke spoke woke began sang sat stood slept kept heard held paid"
    " knew grew threw became forgot led shook chose froze hid fed fought rang swam taught wore".split()
)
_PAST_WORDS = _IRREGULAR_PAST | frozenset(
    "was were had did wasn't weren't hadn't didn't wasnt werent hadnt didnt been ago yesterday".split()
)
_NOT_PAST = frozenset(  # words ending in -ed that are not past tense, or adjectives after "I'm"
    "excited interested scared worried tired bored married engaged stressed thrilled pleased prepared supposed used"
    " based need feed seed speed indeed proceed succeed exceed breed weed hundred sacred naked wicked beloved".split()
)
_FUTURE_WORDS = frozenset("will shall gonna soon upcoming scheduled let's wanna won't".split())
# Past verbs of arranging something ahead: "I booked it on Monday" dates the booking, but "I was accepted for the
# summer school in May", "I've signed up for the race in May", "she booked flights for June" date the thing
# arranged: a "for"/"to" between the verb and the date makes it the future.
_ARRANGED = frozenset(
    "accepted admitted invited signed registered enrolled entered booked reserved selected chosen picked shortlisted"
    " approved scheduled planned arranged confirmed bought ordered".split()
)
_POSTPONED = frozenset("postponed pushed delayed rescheduled bumped".split())  # "pushed it back to June"
_MOVED = frozenset("moved changed switched".split())  # "moved it to October", not "we moved to Lisbon in May"
_MOVED_OBJECTS = frozenset("it them me us that this everything".split())
_PARTICIPLES = frozenset(
    "been gone done seen known taken given eaten written driven ridden flown fallen broken spoken woken begun sung"
    " stolen forgotten chosen frozen hidden shaken grown thrown worn had".split()
)
_REPORTING = frozenset("said says told tells mentioned confirmed asked".split())  # the telling, not the event
_HABIT_WORDS = frozenset("always usually normally typically generally often annually".split())
_HABIT_UNITS = frozenset(  # "every year", "each summer", "every Saturday"
    "year month week weekend summer winter spring fall autumn january february march april may june july august"
    " september october november december monday tuesday wednesday thursday friday saturday sunday".split()
)
_BE_PRESENT = frozenset("is are am".split())
_COPULA_PAST = frozenset(("was", "were"))
_BOOKED = frozenset(  # "the flights were $1,400 in September": what a booking costs, said before the trip
    "flight flights ticket tickets fare fares trip hotel hotels booking reservation price prices quote".split()
)
_FUTURE_PAIRS = frozenset(
    {
        ("plan", "to"), ("plan", "on"), ("plans", "to"), ("plans", "on"), ("planning", "to"), ("planning", "on"),
        ("can't", "wait"), ("cant", "wait"), ("hope", "to"), ("hoping", "to"), ("see", "you"), ("coming", "up"),
        ("looking", "forward"), ("how", "about"), ("can", "we"), ("could", "we"), ("shall", "we"), ("should", "we"),
        ("is", "on"), ("is", "in"), ("are", "on"), ("are", "in"), ("fingers", "crossed"),
    }
)  # fmt: skip
_DETERMINERS = frozenset("the a an my your his her our their this that".split())  # "going to the hens": motion
_PRONOUNS = frozenset("i we you they he she".split())  # not "it": "about it at Christmas" is an object
_NOT_A_VERB = frozenset(  # words after a pronoun that say nothing of its tense
    "let put set cut hit hurt quit read just also really still never always only at in on to for with about from by of"
    " and or but so too as up out off back here there now then again all both".split()
)
_PRESENT_WORDS = frozenset(
    "is are am has have does do can must might need needs hopefully probably maybe perhaps".split()
)
_NOT_A_GERUND = frozenset("morning evening spring king ring wedding ceiling building meeting during".split())
_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?;:\n]")
_REACH = 160  # characters either side of a date that its tense is read from

_Cue = tuple[
    int, int, str
]  # where a cue starts and ends in the text, and its kind: past, future, present, gerund, habit
Reading = Literal["past", "future", "present", "none"]


def _is_past(word: str) -> bool:
    if word in _PAST_WORDS or word.endswith(("'ve", "'d")):
        return True
    return len(word) >= 4 and word.endswith("ed") and word not in _NOT_PAST


def _is_future(words: list[str], i: int) -> int:
    """How many words from ``i`` make a future cue (0: none)."""
    word, after, third = words[i], _at(words, i + 1), _at(words, i + 2)
    if word in _FUTURE_WORDS or word.endswith("'ll"):
        return 1
    if (word, after) in _FUTURE_PAIRS:
        return 2
    if (word, after, third) in (("are", "you", "free"), ("would", "you", "like")):
        return 3
    return _future_in_context(words, i, word, after, third)


def _future_in_context(words: list[str], i: int, word: str, after: str, third: str) -> int:
    before = _at(words, i - 1)
    if word in ("next", "due"):
        return 0 if after == "to" else 1  # not "next to", "due to"
    if word in ("want", "wants") and after == "to":
        return 0 if _negative(before) else 2
    if word == "going" and after == "to":
        return 0 if before in ("was", "were") or third in _DETERMINERS else 2  # "going to the hens": motion
    contracted = word.endswith(("'re", "'m", "'s"))
    if (word in ("is", "are", "am") or contracted) and after.endswith("ing"):
        return 2
    return 2 if contracted and after in ("on", "in") else 0


def _at(words: list[str], i: int) -> str:
    return words[i] if 0 <= i < len(words) else ""


def _negative(word: str) -> bool:
    return word == "not" or word.endswith("n't")


def _is_present(words: list[str], i: int) -> int:
    """How many words from ``i`` make a present-tense cue (0: none)."""
    word, after = words[i], _at(words, i + 1)
    adverb = after.endswith("ly") and len(after) > 3  # "I finally learned": the verb comes after
    if word in _PRONOUNS and after and after not in _NOT_A_VERB and not adverb and not _is_past(after):
        return 2
    if word in _PRESENT_WORDS or word.endswith(("'s", "'re", "'m")):
        return 1
    gerund = len(word) > 3 and word.endswith("ing") and word not in _NOT_A_GERUND and not word.endswith("thing")
    return 2 if gerund and after in ("in", "on", "by") else 0


def _is_gerund(words: list[str], i: int) -> bool:
    return words[i].endswith("ing") and _at(words, i + 1) in ("in", "on", "by")


def cues(text: str, start: int, end: int) -> list[_Cue]:
    """The tense cues in ``text[start:end]``, in order (a past verb wins over a present one on the same word)."""
    found = [(m.start(), m.end(), m.group(0).lower().replace("\u2019", "'")) for m in _WORD.finditer(text, start, end)]
    words = [w for _, _, w in found]
    result: list[_Cue] = []
    covered = 0  # the words of a cue are not cues again: "fingers crossed" is a hope, not a past verb
    for i, (word_start, _, word) in enumerate(found):
        if i < covered:
            continue
        length, kind = _classify(words, i, word)
        if length:
            result.append((word_start, found[min(i + length, len(found)) - 1][1], kind))
            covered = i + length
    return result


def _classify(words: list[str], i: int, word: str) -> tuple[int, str]:
    if word in _REPORTING:
        return 0, ""
    if word in _HABIT_WORDS or (word in ("every", "each") and _at(words, i + 1) in _HABIT_UNITS):
        return 1, "habit"
    before = _at(words, i - 1)
    if word in _FUTURE_WORDS:
        return 1, "future"
    if word in ("was", "were") and _at(words, i + 1) == "going" and _at(words, i + 2) == "to":
        return 3, "plan"  # "we were going to rent a cottage in August": a plan, of either side of today
    if word.endswith("'d"):
        after = _at(words, i + 1)
        if not (_is_past(after) or after in _PARTICIPLES):
            return 1, "future"  # "we'd have to drive", "I'd love to": would, not had
    if _is_past(word):
        # "is scheduled", "we're slammed": a present passive or adjective, not a past event
        present_be = before in _BE_PRESENT or before.endswith(("'s", "'re", "'m"))
        if present_be and word.endswith("ed") and not word.endswith("'d"):
            return 1, "present"
        return 1, "past"
    future = _is_future(words, i)
    if future:
        return future, "future"
    present = _is_present(words, i)
    return present, "gerund" if present and _is_gerund(words, i) else "present"


@dataclass(frozen=True)
class Context:
    """The message a rule reads: its text and its day ("today")."""

    text: str
    today: date

    def sentence(self, match: re.Match[str]) -> tuple[int, int]:
        """The sentence around ``match``, at most ``_REACH`` characters either side (so a long text stays linear)."""
        floor = max(0, match.start() - _REACH)
        left = max(self.text.rfind(c, floor, match.start()) for c in ".!?;:\n") + 1
        ceiling = min(len(self.text), match.end() + _REACH)
        right_match = _SENTENCE_END.search(self.text, match.end(), ceiling)
        return max(left, floor), right_match.start() if right_match else ceiling

    @cached_property
    def _all_cues(self) -> list[_Cue]:
        return cues(self.text, 0, len(self.text))

    @cached_property
    def _cues(self) -> list[_Cue]:
        return [cue for cue in self._all_cues if cue[2] != "habit"]

    @cached_property
    def _habit_starts(self) -> list[int]:
        return [start for start, _, kind in self._all_cues if kind == "habit"]

    @cached_property
    def _cue_starts(self) -> list[int]:
        return [start for start, _, _ in self._cues]

    def _cues_in(self, start: int, end: int) -> list[_Cue]:
        """The message's cues starting in ``text[start:end]`` (found once per message, then looked up)."""
        return self._cues[bisect_left(self._cue_starts, start) : bisect_left(self._cue_starts, end)]

    @cached_property
    def message_tense(self) -> Choice:
        """The message's tense when a sentence has no cue: past unless only future cues appear."""
        said = {kind for _, _, kind in self._cues} - {"present", "gerund"}
        return "future" if said == {"future"} else "past"

    def past_sentence(self, match: re.Match[str]) -> bool:
        """Whether the sentence around ``match`` holds a past-tense verb ("went", "moved", "was")."""
        return any(kind == "past" for _, _, kind in self._cues_in(*self.sentence(match)))

    def habitual(self, match: re.Match[str]) -> bool:
        """Whether the sentence around ``match`` speaks of a habit ("always", "usually", "every year")."""
        left, right = self.sentence(match)
        return any(left <= start < right for start in self._habit_starts)

    def reading(self, match: re.Match[str]) -> Reading:
        """How the sentence around ``match`` places it, by the rules in the module docstring."""
        if self.before(match, 6).endswith("since ") or match.group(0)[:6].lower() == "since ":
            return "past"
        left, right = self.sentence(match)
        before = self._cues_in(left, match.start())
        if before:
            kinds = [kind for _, _, kind in before]
            if kinds[-1] == "plan":
                return "none"
            if kinds[-1] == "past" and self._arranged(before[-1], match):
                return "future"
            # a gerund after a past verb is a past activity: "we went apple picking in October"
            if kinds[-1] == "past" or (kinds[-1] == "gerund" and "past" in kinds):
                return "none" if self._booking_cost(left, before[-1]) else "past"
            return "future" if kinds[-1] == "future" else "present"
        after = self._cues_in(match.end(), right)
        if not after:
            return "none"
        if after[0][2] == "past":
            return "none" if self._booking_cost(left, after[0]) else "past"
        return "future" if after[0][2] == "future" else "present"

    def _arranged(self, cue: _Cue, match: re.Match[str]) -> bool:
        """A past verb that arranged what the date names: "accepted for the summer school in May", "pushed it
        back to June", "moved the launch to March 15"."""
        verb = self.text[cue[0] : cue[1]].lower()
        gap = [w.lower() for w in _WORD.findall(self.text[: match.end()], cue[1])]
        if verb in _POSTPONED:
            return bool({"to", "until", "till", "back"} & set(gap))  # not "delayed six hours in July"
        if verb in _MOVED:
            return bool(gap) and gap[0] in _MOVED_OBJECTS | {"the"} and "to" in gap
        return verb in _ARRANGED and bool({"for", "to"} & set(gap))

    def _booking_cost(self, left: int, cue: _Cue) -> bool:
        """ "The flights were $1,400 in September": a past "was/were" about a booking says nothing of its date."""
        if self.text[cue[0] : cue[1]].lower() not in _COPULA_PAST:
            return False
        return any(m.group(0).lower() in _BOOKED for m in _WORD.finditer(self.text, left, cue[0]))

    def tense(self, match: re.Match[str]) -> Choice:
        """``past`` or ``future``: a present clause speaks of the future, no cue defers to the message's tense."""
        reading = self.reading(match)
        if reading == "none":
            return self.message_tense
        return "past" if reading == "past" else "future"

    def before(self, match: re.Match[str], chars: int = 12) -> str:
        return self.text[max(0, match.start() - chars) : match.start()].lower()
