"""Spans of calendar days the memory pipeline names: a day, a week, a weekend, a month, a year, a season.

Each span carries its label, written the one way the memory pipeline writes dates ("7 May 2023", "the week of
1 May 2023", "the weekend of 6 May 2023", "June 2023", "2019", "summer 2023", "winter 2022-2023"). Weeks run Monday
to Sunday; seasons are meteorological and northern (winter starts in December).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month", "year", "season"]


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
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(d.day, month_length(year, month + 1)))


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
    if unit == "day":
        return day_span(d)
    if unit in ("week", "fortnight"):
        return week_span(d)
    if unit == "month":
        return month_span(d.year, d.month)
    return year_span(d.year)


def shift(d: date, unit: str, n: int) -> date:
    if unit == "day":
        return d + timedelta(days=n)
    if unit in ("week", "fortnight"):
        return d + timedelta(weeks=n * (2 if unit == "fortnight" else 1))
    return add_months(d, n * (12 if unit == "year" else 1))


def month_step(month: int, step: int, today: date) -> Span:
    if step < 0:
        year = today.year if month < today.month else today.year - 1
    elif step > 0:
        year = today.year if month > today.month else today.year + 1
    else:
        year = today.year
    return month_span(year, month)


def season_step(season: str, step: int, today: date) -> Span:
    spans = [season_span(season, year) for year in range(today.year - 2, today.year + 2)]
    if step < 0:
        return [s for s in spans if s.last < today][-1]
    if step > 0:
        return next(s for s in spans if s.first > today)
    holding = [s for s in spans if s.first <= today <= s.last]
    return holding[0] if holding else next(s for s in spans if s.first.year == today.year)
