"""Spans of calendar days the memory pipeline names: a day, a week, a weekend, a month, a year, a season.

Each span carries its label, written the one way the memory pipeline writes dates ("7 May 2023", "the week of
1 May 2023", "the weekend of 6 May 2023", "June 2023", "2019", "summer 2023", "winter 2022-2023"). Weeks run Monday
to Sunday; seasons are meteorological and northern (winter starts in December).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month", "year", "season"]
Choice = Literal["last", "this", "next", "past", "future", "nearest"]


@dataclass(frozen=True)
class Span:
    """Consecutive days from ``first`` to ``last`` (inclusive) at one granularity, with their label."""

    first: date
    last: date
    granularity: Granularity
    label: str


MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
SEASON_START = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}


def format_day(d: date) -> str:
    """A day as the memory pipeline writes it: "7 May 2023" (no leading zero, English month name)."""
    return f"{d.day} {MONTH_NAMES[d.month - 1]} {d.year}"


def add_months(d: date, months: int) -> date:
    """``d`` moved by whole months, its day clamped to the target month's length."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(d.day, month_length(year, month + 1)))


def months_apart(earlier: date, later: date) -> int:
    """Calendar months from ``earlier``'s month to ``later``'s (0 in the same month)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def day_span(d: date) -> Span:
    return Span(d, d, "day", format_day(d))


def week_span(d: date) -> Span:
    monday = d - timedelta(days=d.weekday())
    return Span(monday, monday + timedelta(days=6), "week", f"the week of {format_day(monday)}")


def weekend_span(d: date) -> Span:
    saturday = d - timedelta(days=d.weekday()) + timedelta(days=5)
    return Span(saturday, saturday + timedelta(days=1), "week", f"the weekend of {format_day(saturday)}")


def month_span(year: int, month: int) -> Span:
    first = date(year, month, 1)
    return Span(first, date(year, month, month_length(year, month)), "month", f"{MONTH_NAMES[month - 1]} {year}")


def year_span(year: int) -> Span:
    return Span(date(year, 1, 1), date(year, 12, 31), "year", str(year))


def season_span(season: str, year: int) -> Span:
    """The season that starts in ``year`` (winter: in December of ``year``)."""
    first = date(year, SEASON_START[season], 1)
    last = add_months(first, 3) - timedelta(days=1)
    label = f"winter {year}-{year + 1}" if season == "winter" else f"{season} {year}"
    return Span(first, last, "season", label)


def unit_span(d: date, unit: str) -> Span:
    """The day, week (a fortnight counts in weeks), weekend, month or year holding ``d``."""
    if unit == "day":
        return day_span(d)
    if unit == "weekend":
        return weekend_span(d)
    if unit in ("week", "fortnight"):
        return week_span(d)
    if unit == "month":
        return month_span(d.year, d.month)
    return year_span(d.year)


def shift(d: date, unit: str, n: int) -> date:
    """``d`` moved by ``n`` units (months and years keep the day, clamped to the month's length)."""
    if unit == "day":
        return d + timedelta(days=n)
    if unit in ("week", "weekend", "fortnight"):
        return d + timedelta(weeks=n * (2 if unit == "fortnight" else 1))
    return add_months(d, n * (12 if unit == "year" else 1))


def choose(occurrences: Iterable[Span | None], today: date, choice: Choice) -> Span | None:
    """One of the occurrences of a recurring span (a month, a season, a date, a holiday) as ``choice`` names it.

    ``last``: the latest over before today; ``next``: the first begun after today; ``this``: the one holding today,
    else the one beginning in today's year; ``past``: the latest begun by today; ``future``: the first not over;
    ``nearest``: the one holding today, else the one with the fewest days between it and today (the past on a tie).
    """
    spans = sorted((s for s in occurrences if s is not None), key=lambda s: s.first)
    if choice == "last":
        return next((s for s in reversed(spans) if s.last < today), None)
    if choice == "past":
        return next((s for s in reversed(spans) if s.first <= today), None)
    if choice == "next":
        return next((s for s in spans if s.first > today), None)
    if choice == "future":
        return next((s for s in spans if s.last >= today), None)
    if choice == "nearest":
        return min(spans, key=lambda s: (max((s.first - today).days, (today - s.last).days, 0), s.first), default=None)
    holding = [s for s in spans if s.first <= today <= s.last]
    return holding[0] if holding else next((s for s in spans if s.first.year == today.year), None)


def yearly(today: date, occurrence: Callable[[int], Span | None]) -> list[Span | None]:
    """The occurrences of a yearly span in the years around ``today``."""
    return [occurrence(year) for year in range(today.year - 5, today.year + 6)]


def monthly(today: date, day: int) -> list[Span | None]:
    """Day ``day`` of each month around ``today`` (None where the month is shorter)."""
    months = (add_months(date(today.year, today.month, 1), k) for k in range(-12, 13))
    return [day_span(m.replace(day=day)) if day <= month_length(m.year, m.month) else None for m in months]


def date_span(year: int, month: int, day: int) -> Span | None:
    """The day, or None when the month has no such day."""
    return day_span(date(year, month, day)) if 1 <= day <= month_length(year, month) else None


def holiday(name: str, year: int) -> Span:
    """The day a fixed-date holiday (or Thanksgiving, the fourth Thursday of November) falls on in ``year``."""
    if name == "thanksgiving":
        first = date(year, 11, 1)
        return day_span(first + timedelta(days=(3 - first.weekday()) % 7 + 21))
    month, day = HOLIDAYS[name]
    return day_span(date(year, month, day))


HOLIDAYS = {
    "christmas eve": (12, 24), "christmas": (12, 25), "xmas": (12, 25), "new year's eve": (12, 31),
    "new years eve": (12, 31), "new year's day": (1, 1), "new years day": (1, 1), "halloween": (10, 31),
    "valentine's day": (2, 14), "valentines day": (2, 14), "independence day": (7, 4), "nye": (12, 31),
    "thanksgiving": (11, 1),
}  # fmt: skip
