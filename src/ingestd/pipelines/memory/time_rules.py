"""The rules that find time expressions in a message and name the span of days each one means.

Each rule is a precompiled pattern and a resolver from its match to a ``day_spans.Span`` (or None when the match
turns out not to be a date: "May I", "every Sunday", "twice in a week"). ``memory.when`` documents the rules as
a user sees them and picks among overlapping matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta

from ingestd.pipelines.memory import day_spans
from ingestd.pipelines.memory.day_spans import Span
from ingestd.pipelines.memory.tense import Context

_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4, "sat": 5, "sun": 6,
}  # fmt: skip
_FULL_WEEKDAYS = frozenset(list(_WEEKDAYS)[:7])
_MONTHS = {name.lower(): i + 1 for i, name in enumerate(day_spans.MONTH_NAMES)} | {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_NEEDS_CAPITAL = frozenset({"may", "march", "mar"})
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip
_APPROXIMATE = {"a few": 3, "few": 3, "several": 3, "a couple of": 2, "a couple": 2, "couple of": 2, "couple": 2}
_DAY_WORDS = {
    "the day before yesterday": -2, "the day after tomorrow": 2, "yesterday": -1, "yday": -1, "last night": -1,
    "today": 0, "tonight": 0, "this morning": 0, "this afternoon": 0, "this evening": 0, "tomorrow": 1,
    "tmrw": 1, "tmr": 1, "tonite": 0,
}  # fmt: skip
_STEPS: dict[str, day_spans.Choice] = {
    "last": "last", "this past": "last", "the past": "last", "past": "last", "this": "this", "next": "next",
    "this coming": "next", "coming": "next",
}  # fmt: skip
_STEP_OFFSET = {"last": -1, "this": 0, "next": 1}


def _alternation(words: Iterable[str]) -> str:
    return "|".join(w.replace(" ", r"\s+") for w in sorted(words, key=len, reverse=True))


_FLAGS = re.IGNORECASE
_MONTH = rf"(?P<month>{_alternation(_MONTHS)})"
_YEAR = r"(?P<year>(?:19|20)\d\d)(?!\d)"
_WEEKDAY = rf"(?P<weekday>{_alternation(_WEEKDAYS)})"
_SEASON = rf"(?P<season>{_alternation(day_spans.SEASON_START)})"
_HOLIDAY = rf"(?P<holiday>{_alternation(day_spans.HOLIDAYS)})"
_NUMBER = rf"(?P<n>\d{{1,3}}|{_alternation(list(_APPROXIMATE) + list(_NUMBERS))})"
_UNIT = r"(?P<unit>day|weekend|week|wk|fortnight|month|mth|year|yr)s?"
_UNIT_NAMES = {"wk": "week", "mth": "month", "yr": "year"}
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?(?![\d:%])"
_DIR = rf"(?P<dir>{_alternation(_STEPS)})"
_FULL_WEEKDAY = rf"(?P<weekday>{_alternation(_FULL_WEEKDAYS)})"
_WHICH_WEEK = r"(?P<which>last|this|next)\s+week"
_PART = r"(?:early|mid|late)[\s-]+|(?:the\s+)?(?:end|beginning|start|middle)\s+of\s+"

_DURATION_BEFORE = re.compile(
    r"\b(?:once|twice|times|first|only|ever|all|per|best|worst|most|least|\w+iest|longest|hardest|biggest"
    r"|greatest)(?:\s+\w+)?\s+$"
)
_FROM_MONTH = re.compile(rf"\bfrom\s+(?:{_PART})?{_MONTH}\b", _FLAGS)
_HABIT_IN = re.compile(r"\b(?:every|each)\s+week(?:end)?\b", _FLAGS)  # "Saturday parkrun every week"
_HABIT_BEFORE = re.compile(r"\b(?:every|each|most|some|any|a)\s+$")
_NOT_A_DAY_AFTER = re.compile(r"[\s-]+(?:school|best|nights|mornings|afternoons|evenings)\b", _FLAGS)
# "my last Saturday shift", "her last week at work": the final one, not the latest
_POSSESSIVE_BEFORE = re.compile(r"\b(?:my|your|his|her|our|their|its)\s+$", _FLAGS)
# "the Thursday studio group": a name, not a day ("the Friday before" is one)
_THE_BEFORE = re.compile(r"(?<!\bon )\bthe\s+$", _FLAGS)
_DAY_AFTER_THE = re.compile(r"\s+(?:before|after|of|that|when|following)\b", _FLAGS)
_ORDINAL_FOLLOWER = re.compile(
    r"\s*(?:[,.!?;)]|$|\s(?:we|i|you|he|she|they|my|our|at|in|and|but|so|when|it)\b)", _FLAGS
)
LABEL = re.compile(r"\[[^\[\]\n]*\b\d{1,4}\]")  # a label ``when.annotate`` wrote: every label ends with its year


def _lower(match: re.Match[str], group: str | int) -> str:
    return " ".join(match.group(group).lower().split())


def _group(match: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the group did not take part or the rule has no such group."""
    return match.group(name) if name in match.re.groupindex else None


def _unit(match: re.Match[str]) -> str:
    written = _lower(match, "unit")
    return _UNIT_NAMES.get(written, written)


def _month_of(match: re.Match[str]) -> int | None:
    """The month a match names, or None for a lower-case "may"/"march" (a verb, not a month)."""
    written = match.group("month")
    if written.lower() in _NEEDS_CAPITAL and not written[0].isupper():
        return None
    return _MONTHS[written.lower()]


def _resolve_day_word(match: re.Match[str], ctx: Context) -> Span | None:
    return day_spans.day_span(ctx.today + timedelta(days=_DAY_WORDS[_lower(match, 0)]))


def _weekday_of(match: re.Match[str], ctx: Context) -> int | None:
    """The weekday a match names, or None for "every Sunday", "Sunday school", a bare "sat" or "wed"."""
    written, direction = match.group("weekday"), match.group("dir")
    if direction and _POSSESSIVE_BEFORE.search(ctx.before(match)):
        return None
    if not direction and _THE_BEFORE.search(ctx.before(match)) and not _DAY_AFTER_THE.match(ctx.text, match.end()):
        return None
    if not direction and (
        ctx.habitual(match)
        or _HABIT_BEFORE.search(ctx.before(match))
        or _NOT_A_DAY_AFTER.match(ctx.text, match.end())
        or _HABIT_IN.search(ctx.text, *ctx.sentence(match))
    ):
        return None
    abbreviated = written.lower() not in _FULL_WEEKDAYS
    if abbreviated and not direction and not (_group(match, "on") and written[0].isupper()):
        return None
    return _WEEKDAYS[written.lower()]


def _weekday_near(today: date, weekday: int, choice: day_spans.Choice) -> date:
    if choice == "this":
        return today + timedelta(days=weekday - today.weekday())
    if choice in ("next", "future"):
        return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
    return today - timedelta(days=(today.weekday() - weekday) % 7 or 7)


def _resolve_weekday(match: re.Match[str], ctx: Context) -> Span | None:
    """last/this/next <weekday>, or a bare one ("on Saturday") by tense: strictly before or after today."""
    weekday = _weekday_of(match, ctx)
    if weekday is None:
        return None
    if _group(match, "before_last"):
        return day_spans.day_span(_weekday_near(ctx.today, weekday, "last") - timedelta(weeks=1))
    choice = _STEPS[_lower(match, "dir")] if match.group("dir") else ctx.tense(match)
    return day_spans.day_span(_weekday_near(ctx.today, weekday, choice))


def _resolve_weekday_of_week(match: re.Match[str], ctx: Context) -> Span:
    """ "Thursday next week", "next week on Thursday", "on Tuesday last week": that day of that week (from Monday)."""
    monday = ctx.today - timedelta(days=ctx.today.weekday())
    week = _STEP_OFFSET[_lower(match, "which")]
    return day_spans.day_span(monday + timedelta(weeks=week, days=_WEEKDAYS[_lower(match, "weekday")]))


def _resolve_week_from_weekday(match: re.Match[str], ctx: Context) -> Span:
    """ "a week from Saturday", "a week on Saturday": the coming one, and a week more."""
    coming = _weekday_near(ctx.today, _WEEKDAYS[_lower(match, "weekday")], "future")
    return day_spans.day_span(coming + timedelta(weeks=1))


def _resolve_step(match: re.Match[str], ctx: Context) -> Span | None:
    """last/this/next + week, weekend, month, year, a season or a month name."""
    if ctx.before(match, 4).endswith("the ") or _POSSESSIVE_BEFORE.search(ctx.before(match)):
        return None  # "the last week of June", "the next month or so", "my last week at work"
    choice, unit, today = _STEPS[_lower(match, "dir")], _unit(match), ctx.today
    if unit in day_spans.SEASON_START:
        return day_spans.choose(day_spans.yearly(today, lambda y: day_spans.season_span(unit, y)), today, choice)
    if match.group("month"):
        month = _month_of(match)
        if month is None:
            return None
        return day_spans.choose(day_spans.yearly(today, lambda y: day_spans.month_span(y, month)), today, choice)
    return day_spans.unit_span(day_spans.shift(today, unit, _STEP_OFFSET[choice]), unit)


def _resolve_before_last(match: re.Match[str], ctx: Context) -> Span | None:
    unit = _unit(match)
    return day_spans.unit_span(day_spans.shift(ctx.today, unit, -2), unit)


def _resolve_part_of(match: re.Match[str], ctx: Context) -> Span | None:
    """earlier/later this week|month|year: the part of the unit before or after today."""
    whole = day_spans.unit_span(ctx.today, _unit(match))
    if _lower(match, "dir") == "earlier":
        return Span(whole.first, ctx.today, whole.granularity, whole.label)
    return Span(ctx.today, whole.last, whole.granularity, whole.label)


def _count(match: re.Match[str]) -> tuple[int, bool]:
    """The number of units a match counts and whether it is approximate."""
    written = _lower(match, "n")
    if written.isdigit():
        return int(written), False
    if written in _APPROXIMATE:
        return _APPROXIMATE[written], True
    return _NUMBERS[written], False


def _resolve_offset(match: re.Match[str], ctx: Context) -> Span | None:
    """N units ago / back / in N units / N units from now; "a few" and "a couple" span one unit either side."""
    n, approximate = _count(match)
    if n == 0 or _DURATION_BEFORE.search(ctx.before(match, 24)):
        return None  # "twice in a week", "the best day in a year": a duration, not a date
    if match.group(0)[:3].lower() == "in " and ctx.past_sentence(match) and ctx.tense(match) == "past":
        return None  # "you ate nine in five days"
    sign = -1 if match.group(0).lower().rstrip().endswith(("ago", "back")) else 1
    unit = _unit(match)
    center = day_spans.unit_span(day_spans.shift(ctx.today, unit, sign * n), unit)
    if not approximate:
        return center
    ends = [day_spans.unit_span(day_spans.shift(ctx.today, unit, sign * (n + k)), unit) for k in (-1, 1)]
    first, last = min(s.first for s in ends), max(s.last for s in ends)
    return Span(first, last, center.granularity, f"around {center.label}")


_BOUNDS = frozenset("until till by before after since".split())
_PRESENT_REACH = 8  # months ahead a present-tense clause names ("I graduate in May"); further on it is a habit


def _undirected(match: re.Match[str], ctx: Context, occurrence: Callable[[int], Span | None]) -> Span | None:
    """A yearly span written without a direction ("in June", "on May 7", "in the fall", "for Christmas").

    A habit ("always", "every year") names none; a past clause the latest one begun by today; a future cue the
    first not over; a present clause the first not over when it begins within ``_PRESENT_REACH`` months ("they
    leave in August", said in September, is a habit); no cue in the sentence the nearest one ("early December",
    said in October).
    """
    gate = _group(match, "gate")
    if ctx.habitual(match) and (gate is None or gate.lower() not in _BOUNDS):  # "every Saturday until May": a date
        return None
    reading, occurrences = ctx.reading(match), day_spans.yearly(ctx.today, occurrence)
    if reading == "none":
        return day_spans.choose(occurrences, ctx.today, "nearest")
    span = day_spans.choose(occurrences, ctx.today, "past" if reading == "past" else "future")
    if reading == "present" and span is not None and day_spans.months_apart(ctx.today, span.first) > _PRESENT_REACH:
        return None
    return span


def _resolve_month_day(match: re.Match[str], ctx: Context) -> Span | None:
    month, day = _month_of(match), int(match.group("day"))
    if month is None:
        return None
    if written_year := _group(match, "year"):
        return day_spans.date_span(int(written_year), month, day)
    return _undirected(match, ctx, lambda y: day_spans.date_span(y, month, day))


def _resolve_day_of_month(match: re.Match[str], ctx: Context) -> Span | None:
    """ "on the 5th": that day of the latest month (or, on a future cue, the next) that has it."""
    if not _ORDINAL_FOLLOWER.match(ctx.text, match.end()):
        return None  # "on the 3rd floor"
    return day_spans.choose(day_spans.monthly(ctx.today, int(match.group("day"))), ctx.today, ctx.tense(match))


def _resolve_month(match: re.Match[str], ctx: Context) -> Span | None:
    """A month with a year, or a month after a preposition ("in June"): past by default, future on a cue."""
    month = _month_of(match)
    if month is None:
        return None
    if written_year := _group(match, "year"):
        return day_spans.month_span(int(written_year), month)
    if _group(match, "gate") is not None and _lower(match, "gate") == "to":
        # "pushed it back to June", "from April to November"; not "I talked to June"
        left, _ = ctx.sentence(match)
        if _FROM_MONTH.search(ctx.text, left, match.start()):
            return _undirected(match, ctx, lambda y: day_spans.month_span(y, month))
        if ctx.reading(match) != "future":
            return None
        return day_spans.choose(
            day_spans.yearly(ctx.today, lambda y: day_spans.month_span(y, month)), ctx.today, "future"
        )
    if _group(match, "gate") is not None and _lower(match, "gate") == "for":  # "flights for October"
        return day_spans.choose(
            day_spans.yearly(ctx.today, lambda y: day_spans.month_span(y, month)), ctx.today, "future"
        )
    return _undirected(match, ctx, lambda y: day_spans.month_span(y, month))


def _resolve_year(match: re.Match[str], ctx: Context) -> Span | None:
    return day_spans.year_span(int(match.group("year")))


def _resolve_season_year(match: re.Match[str], ctx: Context) -> Span | None:
    season, year = _lower(match, "season"), int(match.group("year"))
    span = day_spans.season_span(season, year - 1 if season == "winter" else year)
    return Span(span.first, span.last, "season", f"{season} {year}")


def _resolve_season(match: re.Match[str], ctx: Context) -> Span | None:
    """ "in the fall": the latest one begun by today, or on a future cue the first one not yet over."""
    season = _lower(match, "season")
    return _undirected(match, ctx, lambda y: day_spans.season_span(season, y))


def _resolve_holiday(match: re.Match[str], ctx: Context) -> Span | None:
    name = _lower(match, "holiday").replace("xmas", "christmas")
    if not match.group("dir"):
        return _undirected(match, ctx, lambda y: day_spans.holiday(name, y))
    choice = _STEPS[_lower(match, "dir")]
    return day_spans.choose(day_spans.yearly(ctx.today, lambda y: day_spans.holiday(name, y)), ctx.today, choice)


def _resolve_iso(match: re.Match[str], ctx: Context) -> Span | None:
    return day_spans.date_span(int(match.group("year")), int(match.group("month")), int(match.group("day")))


def _resolve_weekend(match: re.Match[str], ctx: Context) -> Span | None:
    """ "over the weekend": the latest weekend begun by today, or the next one on a future cue."""
    weekends = (day_spans.weekend_span(ctx.today + timedelta(weeks=k)) for k in (-1, 0, 1))
    return day_spans.choose(weekends, ctx.today, ctx.tense(match))


Resolver = Callable[[re.Match[str], Context], "Span | None"]


@dataclass(frozen=True)
class Rule:
    """A pattern, the words a text must hold for it to be worth running, and its resolver."""

    requires: tuple[AbstractSet[str], ...]  # one word of each set must be in the text (``#`` stands for a digit)
    pattern: re.Pattern[str]
    resolve: Resolver


def _words(*groups: Iterable[str]) -> frozenset[str]:
    return frozenset(word for group in groups for phrase in group for word in re.findall(r"[a-z]+", phrase))


_DIGIT = frozenset({"#"})
_W_MONTH = _words(_MONTHS)
_W_WEEKDAY = _words(_WEEKDAYS)
_W_SEASON = _words(day_spans.SEASON_START)
_W_UNIT = _words(
    ["day days week weeks wk wks weekend weekends fortnight fortnights month months mth mths year years yr yrs"]
)
_W_DIR = _words(_STEPS)
_STEP_UNITS = rf"(?P<unit>weekend|week|wk|month|year|yr|{_alternation(day_spans.SEASON_START)}|{_MONTH})"
_GATE = r"in|since|during|until|till|by|through|before|after"
_HOLIDAY_GATE = r"(?:\b(?:on|at|for|over|since|after|before|until|by)\s+|\b(?=(?:last|this|next|coming)\s))"
_BACK = r"back(?=\s*(?:[,.!?;]|$|\s+(?:when|I|we|he|she|they)\b))"


def _rule(requires: tuple[AbstractSet[str], ...], pattern: str, resolve: Resolver, flags: int = _FLAGS) -> Rule:
    return Rule(requires, re.compile(pattern, flags), resolve)


RULES: tuple[Rule, ...] = (
    _rule(
        (_words(_DAY_WORDS) - {"the", "day", "before", "after", "last", "this"},),
        rf"\b(?:{_alternation(_DAY_WORDS)})\b",
        _resolve_day_word,
    ),
    _rule((_W_WEEKDAY,), rf"\b(?:(?P<on>on)\s+)?(?P<m>(?:{_DIR}\s+)?{_WEEKDAY})\b", _resolve_weekday),
    _rule(
        (_W_WEEKDAY, {"before"}),
        rf"\bthe\s+(?P<dir>)(?P<m>{_WEEKDAY}\s+(?P<before_last>before\s+last))\b",
        _resolve_weekday,
    ),
    _rule((_W_WEEKDAY, {"week"}), rf"\b{_FULL_WEEKDAY}\s+(?:of\s+)?{_WHICH_WEEK}\b", _resolve_weekday_of_week),
    _rule((_W_WEEKDAY, {"week"}), rf"\b{_WHICH_WEEK}\s+on\s+{_FULL_WEEKDAY}\b", _resolve_weekday_of_week),
    _rule((_W_WEEKDAY, {"week"}), rf"\b(?:a|one)\s+week\s+(?:from|on)\s+{_FULL_WEEKDAY}\b", _resolve_week_from_weekday),
    _rule((_W_DIR, _W_UNIT | _W_SEASON | _W_MONTH), rf"\b{_DIR}\s+{_STEP_UNITS}\b", _resolve_step),
    _rule((_W_UNIT, {"before"}), r"\bthe\s+(?P<unit>weekend|week|month|year)\s+before\s+last\b", _resolve_before_last),
    _rule(
        (_W_UNIT, {"earlier", "later"}),
        r"\b(?P<dir>earlier|later)\s+this\s+(?P<unit>week|month|year)\b",
        _resolve_part_of,
    ),
    _rule((_W_UNIT, {"ago", "back"}), rf"\b{_NUMBER}\s+{_UNIT}\s+(?:ago\b|{_BACK})", _resolve_offset),
    _rule((_W_UNIT, {"in"}), rf"\bin\s+{_NUMBER}\s+{_UNIT}\b(?:'?s?\s+time\b)?", _resolve_offset),
    _rule((_W_UNIT, {"from"}), rf"\b{_NUMBER}\s+{_UNIT}\s+from\s+(?:now|today)\b", _resolve_offset),
    _rule((_W_MONTH, _DIGIT), rf"\b{_MONTH}\.?\s+{_DAY}(?:,?\s+{_YEAR})?", _resolve_month_day),
    _rule((_W_MONTH, _DIGIT), rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+{_YEAR})?", _resolve_month_day),
    _rule(
        (_DIGIT, {"on", "until", "till", "by", "since", "before", "after"}),
        r"\b(?:on|until|till|by|since|before|after)\s+(?P<m>the\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th))\b",
        _resolve_day_of_month,
    ),
    _rule((_W_MONTH, _DIGIT), rf"\b{_MONTH}(?:\s+of)?,?\s+{_YEAR}", _resolve_month),
    _rule(
        (_W_MONTH,),
        rf"(?:\b(?P<gate>{_GATE}|for|from|to)\s+|\b(?={_PART}))(?P<m>(?:{_PART})?{_MONTH})\b(?!\s+\d)",
        _resolve_month,
    ),
    _rule((_W_SEASON, _DIGIT), rf"\b{_SEASON}\s+(?:of\s+)?{_YEAR}", _resolve_season_year),
    _rule(
        (_DIGIT,),
        rf"(?:\b(?:{_GATE}|from)\s+(?:the\s+year\s+)?|\b(?={_PART}))(?P<m>(?:{_PART})?{_YEAR})(?![-/:.,]\d)",
        _resolve_year,
    ),
    _rule((_DIGIT,), r"\b(?P<year>(?:19|20)\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b", _resolve_iso, 0),
    _rule(({"weekend"},), r"\b(?:(?:over|on|during|at)\s+(?P<m>the\s+weekend)|all\s+weekend)\b", _resolve_weekend),
    _rule(
        (_W_SEASON,), rf"\b(?:{_GATE}|over)\s+(?P<m>(?:the\s+)?{_SEASON})\b(?!\s+(?:from|off|of)\b)", _resolve_season
    ),
    _rule(
        (_words(day_spans.HOLIDAYS) - {"s", "day", "eve", "new"},),
        rf"{_HOLIDAY_GATE}(?P<m>(?:{_DIR}\s+)?{_HOLIDAY})\b",
        _resolve_holiday,
    ),
)
_TOKEN = re.compile(r"[a-z]+|\d")


def find(text: str, today: date) -> Iterator[tuple[int, int, Span]]:
    """Every match of every rule that names a span: (start, end, span), overlapping matches included."""
    # The tense is read from the text without the labels ``when.annotate`` wrote, so annotating twice agrees.
    unlabelled = LABEL.sub(lambda label: " " * len(label.group(0)), text) if "[" in text else text
    ctx = Context(unlabelled, today)
    words = {"#" if token.isdigit() else token for token in _TOKEN.findall(text.lower())}
    for rule in RULES:
        if not all(words & required for required in rule.requires):
            continue
        for match in rule.pattern.finditer(text):
            try:
                span = rule.resolve(match, ctx)
            except (ValueError, OverflowError):
                continue  # a day before year 1 or after 9999 ("999 years ago", a reference in 9999): no date
            if span is not None:
                reported = "m" if "m" in rule.pattern.groupindex and match.group("m") is not None else 0
                yield match.start(reported), match.end(reported), span
