"""The recall dataset (bench/data/recall/README.md): loading, validation, and the text normalisation its
answers are scored with. Used by bench/recall.py."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from snowballstemmer import stemmer

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "recall"
CATEGORIES = ["single-hop", "multi-hop", "temporal", "open-domain"]
SCORED_APART = ["adversarial"]

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t don ll re ve m d
    o y also did does going get got still like really just im ive id dont cant wont didnt isnt thats youre hes shes
    theyre""".split()
)
NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}
NUMBERS |= {"first": "1", "second": "2", "third": "3"}
_TOKEN = re.compile(r"[a-z0-9]+")
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th)$")
_STEMMER = stemmer("english")


def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem, so "runs"/"running" and "beagle"/"beagles" meet."""
    return _STEMMER.stemWord(word)  # type: ignore[no-any-return]


def normalise(text: str) -> list[str]:
    """Content words: lowercase, accents kept, punctuation gone, numbers as digits, stopwords dropped, stemmed."""
    out = []
    for raw in _TOKEN.findall(text.lower().replace("'", "")):
        word = NUMBERS.get(raw, raw)
        if (m := _ORDINAL.match(word)) is not None:
            word = m.group(1)
        if word in STOPWORDS:
            continue
        out.append(word if word.isdigit() else stem(word))
    return out


def _words_of(text: str) -> set[str]:
    return set(normalise(unaccent(text)))


def unaccent(text: str) -> str:
    """The text without accents ("Graça" -> "Graca"), so both spellings meet."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def answer_share(answer: str, block: str) -> float:
    """The share of the answer's content words present in the block."""
    wanted = _words_of(answer)
    if not wanted:
        return 1.0
    return len(wanted & _words_of(block)) / len(wanted)


# ---------------------------------------------------------------------------------------------------- dataset


@dataclass
class Conversation:
    id: str
    speakers: list[str]
    sessions: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    turns: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_of: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.sessions:
            for t in s["turns"]:
                self.turns[t["id"]] = t
                self.session_of[t["id"]] = datetime.fromisoformat(s["date_time"])


def load(folder: Path) -> list[Conversation]:
    """Every ``*.json`` conversation of ``folder``, by file name."""
    convs = []
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        convs.append(Conversation(raw["id"], raw["speakers"], raw["sessions"], raw["questions"]))
    if not convs:
        sys.exit(f"no conversations (*.json) in {folder}")
    return convs


def one_user(convs: list[Conversation]) -> Conversation:
    """All ``convs`` as one memory (``conv-all``): turn ids and evidence prefixed with their conversation
    ("maya-daniel-D1:3"), sessions renumbered in time order. A longer memory with more speakers, where the
    questions name whom they ask about."""
    sessions, questions, speakers = [], [], []
    for conv in convs:
        short = conv.id.removeprefix("conv-")
        speakers += conv.speakers
        for s in conv.sessions:
            turns = [{**t, "id": f"{short}-{t['id']}"} for t in s["turns"]]
            sessions.append({**s, "turns": turns})
        questions += [{**q, "evidence": [f"{short}-{e}" for e in q["evidence"]]} for q in conv.questions]
    sessions.sort(key=lambda s: datetime.fromisoformat(s["date_time"]))
    sessions = [{**s, "session": i} for i, s in enumerate(sessions, 1)]
    return Conversation("conv-all", speakers, sessions, questions)


_MONTHS = "january february march april may june july august september october november december".split()
_DATE = re.compile(r"(?:(\d{1,2}) )?(" + "|".join(m.title() for m in _MONTHS) + r")? ?(\d{4})")


def answer_dates(answer: str) -> list[datetime]:
    """The dates an answer names ("7 May 2023", "June 2023", "2019"), at their first day."""
    found = []
    for day, month, year in _DATE.findall(answer):
        mo = _MONTHS.index(month.lower()) + 1 if month else 1
        found.append(datetime(int(year), mo, int(day) if day else 1))
    return found


def _date_patterns(day: str, month: str, year: str) -> list[str]:
    if not month:
        return [rf"\b{year}\b"]
    mo = _MONTHS.index(month.lower()) + 1
    name = rf"(?:{month}|{month[:3]}\.?)"
    if not day:
        return [rf"\b{name},? {year}\b", rf"\b{name} \d{{1,2}}(?:st|nd|rd|th)?,? {year}\b", rf"\b{year}-{mo:02d}-"]
    return [
        rf"\b{int(day)} {name},? {year}\b",
        rf"\b{name} {int(day)}(?:st|nd|rd|th)?,? {year}\b",
        rf"\b{year}-{mo:02d}-{int(day):02d}\b",
    ]


_MONTH = "(?:" + "|".join(m.title() for m in _MONTHS) + ")"
_DATES_IN_TEXT = re.compile(
    rf"\b(?:\d{{1,2}} {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|{_MONTH},? \d{{4}}"
    rf"|\d{{4}}-\d\d-\d\d)\b",
    re.IGNORECASE,
)


def without_dates(text: str) -> str:
    """The text with its full dates ("6 February 2025", "June 2025", "2025-02-06") taken out."""
    return _DATES_IN_TEXT.sub(" ", text)


def answer_words(answer: str, block: str) -> float:
    """The share of the answer's content words in the block; for an answer that names no date, the block's
    dates are left out first, so that a block dating every line does not match "six" or "four" by chance."""
    return answer_share(answer, block if answer_dates(answer) else without_dates(block))


def date_found(answer: str, block: str) -> bool | None:
    """Whether every date the answer names is in the block as a date ("9 April 2024", "April 9, 2024",
    "2024-04-09"; "June 2024" for a month, the year for a year); None when the answer names none."""
    dates = _DATE.findall(answer)
    if not dates:
        return None
    return all(any(re.search(p, block, re.IGNORECASE) for p in _date_patterns(*d)) for d in dates)


def check(conv: Conversation) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one conversation: shapes, evidence ids, answers backed by their evidence."""
    errors, warnings = [], []
    if len(conv.sessions) < 15:
        warnings.append(f"{conv.id}: {len(conv.sessions)} sessions (< 15)")
    for s in conv.sessions:
        for i, t in enumerate(s["turns"], 1):
            if t["id"] != f"D{s['session']}:{i}" or t["speaker"] not in conv.speakers:
                errors.append(f"{conv.id}: bad turn {t}")
        if not 8 <= len(s["turns"]) <= 25:
            warnings.append(f"{conv.id}: session {s['session']} has {len(s['turns'])} turns")
    for q in conv.questions:
        errors += [f"{conv.id}: {q['question']!r}: no turn {e}" for e in q["evidence"] if e not in conv.turns]
        if q["category"] not in CATEGORIES + SCORED_APART:
            errors.append(f"{conv.id}: {q['question']!r}: category {q['category']!r}")
        if errors or q["category"] == "adversarial":
            continue
        problem = _unbacked(conv, q)
        if problem:
            (errors if problem.startswith("!") else warnings).append(f"{conv.id}: {q['question']!r}: {problem}")
    return errors, warnings


def _unbacked(conv: Conversation, q: dict[str, Any]) -> str:
    """Why the evidence does not back the answer ("!..." when not at all), or ""."""
    if q["category"] == "temporal":
        dates = answer_dates(q["answer"])
        said = [conv.session_of[e] for e in q["evidence"]]
        if not dates:
            return "! a temporal answer without a date"
        near = any(abs((d - s.replace(tzinfo=None)).days) <= 400 for d in dates for s in said)
        return "" if near else f"! {q['answer']} is far from the evidence sessions {said}"
    text = " ".join(conv.turns[e]["speaker"] + " " + conv.turns[e]["text"] for e in q["evidence"])
    share = answer_share(q["answer"], text)
    missing = sorted(_words_of(q["answer"]) - _words_of(text))
    if share == 0:
        return f"! none of the answer's words are in the evidence ({missing})"
    return "" if share >= 0.5 else f"only {share:.2f} of the answer's words in the evidence, missing {missing}"


def run_check(convs: list[Conversation]) -> int:
    bad = 0
    for conv in convs:
        errors, warnings = check(conv)
        cats: dict[str, int] = defaultdict(int)
        for q in conv.questions:
            cats[q["category"]] += 1
        turns = sum(len(s["turns"]) for s in conv.sessions)
        print(f"{conv.id}: {len(conv.sessions)} sessions, {turns} turns, {len(conv.questions)} questions {dict(cats)}")
        for line in errors:
            print("  ERROR", line)
        for line in warnings:
            print("  warning", line)
        bad += len(errors)
    return 1 if bad else 0
