"""When a submitted job may start: ``run_at`` (an instant with a zone) or ``delay_seconds`` from now, not both.

The job is stored at once (the 202 means it is durable) and queued with that ``run_at``; workers claim only jobs
whose ``run_at`` has come, so it never starts early (it starts within ``INGESTD_POLL_SECONDS`` after).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingestd import errors

MAX_DELAY_SECONDS = 30 * 24 * 3600.0


def run_at_from(run_at: datetime | None, delay_seconds: float | None) -> datetime | None:
    """The job's start time, or None for "now"; a 422 problem naming the field for a bad combination."""
    if run_at is not None and delay_seconds is not None:
        raise errors.InvalidInput("give run_at or delay_seconds, not both", field="delay_seconds")
    if delay_seconds is not None:
        return datetime.now(UTC) + timedelta(seconds=delay_seconds)
    if run_at is None:
        return None
    if run_at.tzinfo is None:
        raise errors.InvalidInput("run_at needs a time zone, e.g. 2026-12-31T09:00:00Z", field="run_at")
    if run_at - datetime.now(UTC) > timedelta(seconds=MAX_DELAY_SECONDS):
        raise errors.InvalidInput("run_at is at most 30 days ahead", field="run_at")
    return run_at
