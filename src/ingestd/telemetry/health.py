"""The readiness checks that read the job history: is work being picked up, and is it succeeding.

``/readyz`` (``ingestd.api.health``, which also checks the store and the workers itself) answers 503 naming the
failed checks when a pipeline's oldest queued job has waited past ``ready_max_queue_age_seconds`` (work is not
being picked up: too few workers, a stuck ordering key, a dead dispatcher) or a pipeline's recent failure rate
passes ``ready_max_failure_rate`` (a provider is down, a bad deploy). Thresholds of 0 turn a check off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ingestd.models import JSON, JobFilter, JobStatus, utcnow
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore

# Enough recent jobs to judge a failure rate without reading a whole busy pipeline's history.
_FAILURE_SAMPLE = 200


@dataclass(frozen=True)
class Check:
    """One readiness check: its name (``queue_age:audio``, ``failure_rate:audio``)."""

    name: str
    ok: bool
    detail: str
    value: float | None = None
    threshold: float | None = None


async def failure_rate_checks(store: JobStore, settings: Settings, pipelines: Sequence[str]) -> list[Check]:
    """One check per pipeline: its failed share of recently finished jobs (none when the check is off)."""
    if settings.ready_max_failure_rate <= 0:
        return []
    return [await _failure_rate_check(store, str(name), settings) for name in pipelines]


def queue_age_checks(queues: Sequence[JSON], limit: float) -> list[Check]:
    """One check per pipeline in ``queue_stats``: its oldest queued job waited less than ``limit`` seconds."""
    if limit <= 0:
        return []
    checks = []
    for row in queues:
        age = float(row.get("oldest_queued_age") or 0.0)
        name = f"queue_age:{row['pipeline']}"
        if age > limit:
            detail = f"pipeline {row['pipeline']}: oldest queued job waited {age:.0f} s (limit {limit:g} s)"
            checks.append(Check(name, False, detail, age, limit))
        else:
            checks.append(Check(name, True, f"pipeline {row['pipeline']}: oldest queued {age:.0f} s", age, limit))
    return checks


async def _failure_rate_check(store: JobStore, pipeline: str, settings: Settings) -> Check:
    since = utcnow() - timedelta(seconds=settings.ready_failure_window_seconds)
    page = await store.list_jobs(JobFilter(pipeline=pipeline, created_after=since), limit=_FAILURE_SAMPLE)
    finished = [j for j in page.jobs if j.status.terminal and j.status is not JobStatus.CANCELED]
    failed = sum(1 for j in finished if j.status is JobStatus.FAILED)
    name, limit = f"failure_rate:{pipeline}", settings.ready_max_failure_rate
    if len(finished) < settings.ready_failure_min_jobs:
        return Check(name, True, f"pipeline {pipeline}: {len(finished)} finished recently, too few to judge")
    rate = failed / len(finished)
    detail = f"pipeline {pipeline}: {failed} of the last {len(finished)} jobs failed ({rate:.0%}, limit {limit:.0%})"
    return Check(name, rate <= limit, detail, round(rate, 4), limit)
