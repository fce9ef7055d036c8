"""Which checkpoints a retried job drops: the steps that failed, and the plain steps (no ``[i]`` in their key) that
finished after the first failure, since they were computed from the failed ones (a ``collect`` after a ``map``).
Items that succeeded, and everything before the first failure, are kept: they never run or bill again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestd.models import JobStatus

# A job that ended without succeeding: failed, partial or canceled.
RETRYABLE = tuple(status.value for status in JobStatus if status.terminal and status is not JobStatus.SUCCEEDED)


def steps_to_rerun(steps: Sequence[tuple[str, bool, float | datetime]]) -> list[str]:
    """Keys to delete from ``(key, ok, finished_at)`` rows; none when no step failed (a canceled job resumes)."""
    failures = [finished for _, ok, finished in steps if not ok]
    if not failures:
        return []
    first: Any = min(failures)  # all floats (SQLite) or all datetimes (PostgreSQL)
    return sorted(key for key, ok, finished in steps if not ok or ("[" not in key and finished >= first))


def not_retryable(job_id: str, status: str) -> str:
    return f"job {job_id} is {status}: only a failed, partial or canceled job can be retried"
