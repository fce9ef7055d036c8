"""Time expressions in chat messages, resolved against the message's timestamp into absolute, human dates.

``resolve_times`` finds the expressions ("yesterday", "last Saturday", "two weeks ago", "in June", "since 2020")
and resolves each to a span of days with a label ("7 May 2023", "the week of 1 May 2023", "June 2023", "2019",
"summer 2023"); ``annotate`` writes the labels into the text after the relative ones; ``format_day`` is the one
place the memory pipeline formats a date.

Rules (kept simple on purpose; a vague expression gives nothing rather than a wrong date):

- The reference's own wall-clock date is "today". Weeks run Monday to Sunday; a weekend is its week's Saturday and
  Sunday. Seasons are meteorological and northern: spring March-May, summer June-August, fall/autumn
  September-November, winter December-February (labelled "winter 2022-2023"; "winter 2023" is the one holding
  January 2023).
- "last <weekday>" is the latest one strictly before today, "next <weekday>" the first strictly after,
  "this <weekday>" the one in the current week. "last/this/next week|weekend|month|year|<season>|<month>" step
  whole calendar units ("last summer" is the latest summer that has ended).
- Tense, for expressions without a direction ("on Saturday", "Saturday", "in June", "on May 7", "7 May", "over the
  weekend"): past by default (the latest one on or before today; a weekday strictly before), future when the
  sentence holds a future cue (will, 'll, going to, gonna, plan to, can't wait, hope to, next, soon, let's, ...).
- "N days|weeks|months|years ago", "in N ..." and "N ... from now" resolve at that unit's granularity; "a few",
  "several" (3) and "a couple (of)" (2) are approximate: the span covers one unit either side, labelled "around".
- Bare years count only after a preposition ("in 2019", "since 2020", "back in 2012"); decades ("the 90s"), hours,
  "recently", "the other day", "a while ago" give nothing. "May" and "March" must be capitalised ("I may go",
  "they march on" are not dates), and a month without a day needs a preposition ("in June", "by mid-July").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ingestd.pipelines.memory import day_spans

Granularity = day_spans.Granularity


@dataclass(frozen=True)
class TimeMention:
    """One time expression in a text and the span of days it names.

    Attributes:
        start: Offset of the expression's first character in the text.
        end: Offset just past its last character.
        text: The expression as written.
        first: The first day of the span it names.
        last: The last day of the span (equal to ``first`` for a day).
        granularity: The unit of the span.
        label: The span as an absolute, human phrase ("7 May 2023", "the week of 1 May 2023", "June 2023").
    """

    start: int
    end: int
    text: str
    first: date
    last: date
    granularity: Granularity
    label: str


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
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
    "tmrw": 1, "tmr": 1,
}  # fmt: skip


format_day = day_spans.format_day
__all__ = ["Granularity", "TimeMention", "annotate", "format_day", "resolve_times"]


def _alternation(words: Iterable[str]) -> str:
    return "|".join(w.replace(" ", r"\s+") for w in sorted(words, key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternation(_MONTHS)})"
_YEAR = r"(?P<year>(?:19|20)\d\d)(?![\d])"
_WEEKDAY = rf"(?P<weekday>{_alternation(_WEEKDAYS)})"
_SEASON = rf"(?P<season>{_alternation(day_spans.SEASON_START)})"
_NUMBER = rf"(?P<n>\d{{1,3}}|{_alternation(list(_APPROXIMATE) + list(_NUMBERS))})"
_UNIT = r"(?P<unit>day|week|fortnight|month|year)s?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?(?![\d:%])"
_FLAGS = re.IGNORECASE

_FUTURE_CUE = re.compile(
    r"\b(?:will|shall|going\s+to|gonna|plan(?:s|ning)?\s+(?:to|on)|looking\s+forward|can'?t\s+wait|hop(?:e|ing)\s+to"
    r"|upcoming|coming\s+up|next|soon|let'?s|wanna|want\s+to|are\s+you\s+free|see\s+you)\b|\w'll\b|\bwon'?t\b",
    _FLAGS,
)
_DURATION_BEFORE = re.compile(
    r"\b(?:once|twice|times|first|only|ever|all|per|best|worst|most|least|\w+iest|longest|hardest|biggest|greatest)(?:\s+\w+)?\s+$"
)
_SENTENCE_END = re.compile(r"[.!?\n]")
_LABEL_AFTER = re.compile(r"\s*\[[^\[\]\n]*\b(?:19|20)\d\d\b[^\[\]\n]*\]")
_HAS_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


# --- resolution context -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    text: str
    today: date

    def future(self, match: re.Match[str]) -> bool:
        """Whether the sentence around ``match`` speaks of the future (see the module docstring)."""
        left = max(self.text.rfind(c, 0, match.start()) for c in ".!?\n") + 1
        right_match = _SENTENCE_END.search(self.text, match.end())
        right = right_match.start() if right_match else len(self.text)
        return _FUTURE_CUE.search(self.text, left, right) is not None

    def before(self, match: re.Match[str], chars: int = 12) -> str:
        return self.text[max(0, match.start() - chars) : match.start()].lower()


def _lower(match: re.Match[str], group: str | int) -> str:
    return " ".join(match.group(group).lower().split())


def _group(match: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the group did not take part or the rule has no such group."""
    return match.group(name) if name in match.re.groupindex else None


def _month_of(match: re.Match[str]) -> int | None:
    """The month a match names, or None for a lower-case "may"/"march" (a verb, not a month)."""
    written = match.group("month")
    if written.lower() in _NEEDS_CAPITAL and not written[0].isupper():
        return None
    return _MONTHS[written.lower()]


# --- rules --------------------------------------------------------------------------------------------------------


def _resolve_day_word(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    return day_spans.day_span(ctx.today + timedelta(days=_DAY_WORDS[_lower(match, 0)]))


def _resolve_weekday(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    weekday = _WEEKDAYS.index(match.group("weekday").lower())
    direction = _lower(match, "dir") if match.group("dir") else ""
    if not direction and re.search(r"\b(?:every|each|most|some|any|on\s+a)\s+$", ctx.before(match)):
        return None
    today = ctx.today
    if direction == "this":
        return day_spans.day_span(today - timedelta(days=today.weekday() - weekday))
    if direction in ("next", "this coming", "coming") or (not direction and ctx.future(match)):
        return day_spans.day_span(today + timedelta(days=(weekday - today.weekday()) % 7 or 7))
    return day_spans.day_span(today - timedelta(days=(today.weekday() - weekday) % 7 or 7))


_STEP = {"last": -1, "this past": -1, "the past": -1, "past": -1, "this": 0, "next": 1, "this coming": 1}


def _resolve_step(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    """last/this/next + week, weekend, month, year, a season or a month name."""
    if ctx.before(match, 4).endswith("the "):
        return None  # "the last week of June", "the next month or so"
    step = _STEP[_lower(match, "dir")]
    unit = _lower(match, "unit")
    if unit in day_spans.SEASON_START:
        return day_spans.season_step(unit, step, ctx.today)
    if match.group("month"):
        month = _month_of(match)
        return None if month is None else day_spans.month_step(month, step, ctx.today)
    if unit == "weekend":
        return day_spans.weekend_span(ctx.today + timedelta(weeks=step))
    return day_spans.unit_span(day_spans.shift(ctx.today, unit, step), unit)


def _resolve_before_last(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    unit = _lower(match, "unit")
    if unit == "weekend":
        return day_spans.weekend_span(ctx.today - timedelta(weeks=2))
    return day_spans.unit_span(day_spans.shift(ctx.today, unit, -2), unit)


def _resolve_part_of(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    """earlier/later this week|month|year: the part of the unit before or after today."""
    unit = _lower(match, "unit")
    whole = day_spans.unit_span(ctx.today, unit)
    if _lower(match, "dir") == "earlier":
        return day_spans.Span(whole.first, ctx.today, whole.granularity, whole.label)
    return day_spans.Span(ctx.today, whole.last, whole.granularity, whole.label)


def _count(match: re.Match[str]) -> tuple[int, bool] | None:
    """The number of units a match counts and whether it is approximate."""
    written = _lower(match, "n")
    if written.isdigit():
        return int(written), False
    if written in _APPROXIMATE:
        return _APPROXIMATE[written], True
    return _NUMBERS[written], False


def _resolve_offset(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    """N units ago / in N units / N units from now."""
    counted = _count(match)
    if counted is None or counted[0] == 0:
        return None
    if _DURATION_BEFORE.search(ctx.before(match, 24)):
        return None  # "twice in a week", "the best day in a year": a duration, not a date
    n, approximate = counted
    sign = -1 if match.group(0).lower().rstrip().endswith("ago") else 1
    unit = _lower(match, "unit")
    center = day_spans.unit_span(day_spans.shift(ctx.today, unit, sign * n), unit)
    if not approximate:
        return center
    ends = [day_spans.unit_span(day_spans.shift(ctx.today, unit, sign * (n + k)), unit) for k in (-1, 1)]
    first, last = min(s.first for s in ends), max(s.last for s in ends)
    return day_spans.Span(first, last, center.granularity, f"around {center.label}")


def _resolve_month_day(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    month, day = _month_of(match), int(match.group("day"))
    if month is None or not 1 <= day <= 31:
        return None
    if written_year := _group(match, "year"):
        year = int(written_year)
        return day_spans.day_span(date(year, month, day)) if day <= day_spans.month_length(year, month) else None
    future = ctx.future(match)
    for year in _years_from(ctx.today.year, future):
        if day <= day_spans.month_length(year, month):
            candidate = date(year, month, day)
            if (candidate >= ctx.today) if future else (candidate <= ctx.today):
                return day_spans.day_span(candidate)
    return None


def _years_from(year: int, future: bool) -> list[int]:
    return [year + k for k in range(5)] if future else [year - k for k in range(5)]


def _resolve_month(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    """A month with a year, or a month after a preposition ("in June"): past by default, future on a cue."""
    month = _month_of(match)
    if month is None:
        return None
    if written_year := _group(match, "year"):
        return day_spans.month_span(int(written_year), month)
    today = ctx.today
    if (_group(match, "gate") and _lower(match, "gate") == "since") or not ctx.future(match):
        return day_spans.month_span(today.year if month <= today.month else today.year - 1, month)
    return day_spans.month_span(today.year if month >= today.month else today.year + 1, month)


def _resolve_year(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    return day_spans.year_span(int(match.group("year")))


def _resolve_season_year(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    season, year = _lower(match, "season"), int(match.group("year"))
    span = day_spans.season_span(season, year - 1 if season == "winter" else year)
    return day_spans.Span(span.first, span.last, "season", f"{season} {year}")


def _resolve_iso(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    try:
        return day_spans.day_span(date(int(match.group("year")), int(match.group("month")), int(match.group("day"))))
    except ValueError:
        return None


def _resolve_weekend(match: re.Match[str], ctx: _Context) -> day_spans.Span | None:
    """ "over the weekend": the latest weekend begun by today, or the next one on a future cue."""
    today = ctx.today
    this_saturday = today - timedelta(days=today.weekday()) + timedelta(days=5)
    if ctx.future(match):
        return day_spans.weekend_span(this_saturday)
    return day_spans.weekend_span(this_saturday if today >= this_saturday else this_saturday - timedelta(weeks=1))


_Resolver = Callable[[re.Match[str], _Context], "day_spans.Span | None"]
_STEP_UNITS = rf"(?P<unit>weekend|week|month|year|{_alternation(day_spans.SEASON_START)}|{_MONTH})"
_MONTH_GATE = r"in|since|during|until|till|by|through|before|after"
_PART_OF_MONTH = r"(?:early|mid|late)[\s-]+|the\s+(?:end|beginning|start|middle)\s+of\s+"
_RULES: tuple[tuple[re.Pattern[str], _Resolver], ...] = (
    (re.compile(rf"\b(?:{_alternation(_DAY_WORDS)})\b", _FLAGS), _resolve_day_word),
    (
        re.compile(
            rf"\b(?:on\s+)?(?P<m>(?:(?P<dir>this\s+coming|this\s+past|last|this|next|coming|past)\s+)?{_WEEKDAY})\b",
            _FLAGS,
        ),
        _resolve_weekday,
    ),
    (
        re.compile(rf"\b(?P<dir>this\s+coming|this\s+past|the\s+past|last|this|next)\s+{_STEP_UNITS}\b", _FLAGS),
        _resolve_step,
    ),
    (re.compile(r"\bthe\s+(?P<unit>weekend|week|month|year)\s+before\s+last\b", _FLAGS), _resolve_before_last),
    (re.compile(r"\b(?P<dir>earlier|later)\s+this\s+(?P<unit>week|month|year)\b", _FLAGS), _resolve_part_of),
    (re.compile(rf"\b{_NUMBER}\s+{_UNIT}\s+ago\b", _FLAGS), _resolve_offset),
    (re.compile(rf"\bin\s+{_NUMBER}\s+{_UNIT}\b(?:'?s?\s+time\b)?", _FLAGS), _resolve_offset),
    (re.compile(rf"\b{_NUMBER}\s+{_UNIT}\s+from\s+(?:now|today)\b", _FLAGS), _resolve_offset),
    (re.compile(rf"\b{_MONTH}\.?\s+{_DAY}(?:,?\s+{_YEAR})?", _FLAGS), _resolve_month_day),
    (re.compile(rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+{_YEAR})?", _FLAGS), _resolve_month_day),
    (re.compile(rf"\b{_MONTH}(?:\s+of)?,?\s+{_YEAR}", _FLAGS), _resolve_month),
    (
        re.compile(
            rf"(?:\b(?P<gate>{_MONTH_GATE})\s+|\b(?={_PART_OF_MONTH}))"
            rf"(?P<m>(?:{_PART_OF_MONTH})?{_MONTH})\b(?!\s+\d)",
            _FLAGS,
        ),
        _resolve_month,
    ),
    (re.compile(rf"\b{_SEASON}\s+(?:of\s+)?{_YEAR}", _FLAGS), _resolve_season_year),
    (
        re.compile(
            rf"\b(?:in|since|during|until|till|before|after|from|through|by)\s+(?:the\s+year\s+)?(?P<m>{_YEAR})"
            r"(?![-/:.,]\d)",
            _FLAGS,
        ),
        _resolve_year,
    ),
    (re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b"), _resolve_iso),
    (re.compile(r"\b(?:over|on|during|at)\s+(?P<m>the\s+weekend)\b", _FLAGS), _resolve_weekend),
)


def _span_of(match: re.Match[str]) -> tuple[int, int]:
    """The reported part of a match: its ``m`` group when the rule has one (leaving out a gating preposition)."""
    if "m" in match.re.groupindex and match.group("m") is not None:
        return match.span("m")
    return match.span()


def _candidates(text: str, ctx: _Context) -> list[TimeMention]:
    found: list[TimeMention] = []
    for pattern, resolve in _RULES:
        for match in pattern.finditer(text):
            span = resolve(match, ctx)
            if span is None:
                continue
            start, end = _span_of(match)
            found.append(TimeMention(start, end, text[start:end], span.first, span.last, span.granularity, span.label))
    return found


def resolve_times(text: str, reference: datetime) -> list[TimeMention]:
    """The time expressions in ``text``, resolved against ``reference`` (the message's timestamp).

    Overlapping expressions keep the one that starts first, then the longest. Labels that ``annotate`` wrote
    ("yesterday [7 May 2023]") are not reported again.

    Args:
        text: A message's text.
        reference: When the message was written; its own wall-clock date is "today".

    Returns:
        The mentions in the order they appear.
    """
    ctx = _Context(text, reference.date())
    chosen: list[TimeMention] = []
    covered_until = 0
    for mention in sorted(_candidates(text, ctx), key=lambda m: (m.start, -m.end)):
        if mention.start < covered_until:
            continue
        chosen.append(mention)
        label = _LABEL_AFTER.match(text, mention.end)
        covered_until = label.end() if label else mention.end
    return chosen


def annotate(text: str, reference: datetime) -> str:
    """``text`` with each relative time expression followed by its label: "I went yesterday [7 May 2023]."

    Expressions that already carry a year ("7 May 2023", "in 2019") are left as they are, and so are expressions
    already followed by a label, so annotating twice changes nothing.
    """
    pieces: list[str] = []
    done = 0
    for mention in resolve_times(text, reference):
        if _HAS_YEAR.search(mention.text) or _LABEL_AFTER.match(text, mention.end):
            continue
        pieces.append(text[done : mention.end])
        pieces.append(f" [{mention.label}]")
        done = mention.end
    pieces.append(text[done:])
    return "".join(pieces)
