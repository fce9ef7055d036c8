"""Dates in messages: relative expressions resolved against the message's time, and absolute labels.

The resolver is ``when.py`` (``resolve_times`` / ``annotate``); until it is importable, messages keep their text
as written and only their own date is shown. Labels are "7 May 2023" (day, English month name, year), so an
answer worded "7 May 2023" or "May 7, 2023" finds its words in a context block.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any


def day_label(value: datetime) -> str:
    """``7 May 2023``."""
    return f"{value.day} {value.strftime('%B')} {value.year}"


def _when() -> Any | None:
    try:
        return importlib.import_module("ingestd.pipelines.memory.when")
    except Exception:  # absent, or not importable here: messages keep their own words
        return None


def annotate(text: str, at: datetime) -> tuple[str, list[str]]:
    """``text`` with each time expression followed by its resolved date ("yesterday [7 May 2023]"), and the
    labels of the dates it mentions, in order of mention (no duplicates)."""
    when = _when()
    if when is None:
        return text, []
    mentions = when.resolve_times(text, at)
    labels = list(dict.fromkeys(str(getattr(m, "label", "")) for m in mentions if getattr(m, "label", "")))
    return str(when.annotate(text, at)), labels
