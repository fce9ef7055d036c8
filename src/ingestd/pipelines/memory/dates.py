"""Dates in messages: relative expressions resolved against the message's time (``when.py``), and labels.

Labels are "7 May 2023" (day, English month name, year), so an answer worded "7 May 2023" or "May 7, 2023"
finds its words in a context block.
"""

from __future__ import annotations

from datetime import datetime

from ingestd.pipelines.memory import when


def day_label(value: datetime) -> str:
    """``7 May 2023``: the message's own day, as written everywhere in the memory pipeline."""
    return when.format_day(value.date())


def annotate(text: str, at: datetime) -> tuple[str, list[str]]:
    """``text`` with each relative time expression followed by its resolved date ("yesterday [7 May 2023]"),
    and the labels of the dates it mentions, in order of mention (no duplicates)."""
    labels = list(dict.fromkeys(m.label for m in when.resolve_times(text, at)))
    return when.annotate(text, at), labels
