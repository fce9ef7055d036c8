"""The numbers behind the dashboard's charts: queue depth and throughput over the last hour, from the store.

Computed on request from the jobs themselves (``list_jobs``) and ``queue_stats``, so every API process shows the
same thing and nothing has to be sampled in the background. The queue depth at a past moment is reconstructed
from each job's ``created_at`` / ``started_at`` / ``finished_at`` (a job retried later counts as running until
it ends). Reading is capped at ``max_jobs``; past that the charts say ``truncated`` and Prometheus is the place
for history (``ingestd_queue_depth``, ``ingestd_jobs_finished_total``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ingestd.models import JSON, Job, JobFilter, utcnow
from ingestd.store.protocol import JobStore


async def recent_jobs(store: JobStore, flt: JobFilter, *, max_jobs: int) -> tuple[list[Job], bool]:
    """Jobs matching ``flt``, newest first, at most ``max_jobs``; and whether there were more."""
    jobs: list[Job] = []
    cursor: str | None = None
    while len(jobs) < max_jobs:
        page = await store.list_jobs(flt, limit=min(500, max_jobs - len(jobs)), cursor=cursor)
        jobs.extend(page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            return jobs, False
    return jobs, True


def _bucket(when: datetime | None, start: datetime, bucket: float, n: int) -> int | None:
    if when is None or when < start:
        return None
    i = int((when - start).total_seconds() // bucket)
    return i if i < n else None


def _count_over_time(jobs: list[Job], times: list[datetime]) -> tuple[list[int], list[int]]:
    """(queued, running) at each moment in ``times``."""
    queued, running = [0] * len(times), [0] * len(times)
    for job in jobs:
        begin = max(job.created_at, job.run_at)
        for i, t in enumerate(times):
            if begin > t or (job.finished_at is not None and job.finished_at <= t):
                continue
            if job.started_at is None or job.started_at > t:
                queued[i] += 1
            else:
                running[i] += 1
    return queued, running


def build_stats(
    jobs: list[Job], queues: list[JSON], *, now: datetime, window_seconds: float = 3600, bucket_seconds: float = 60
) -> JSON:
    """Per-bucket submissions, completions by status, queue depth and running jobs over the window."""
    n = max(1, int(window_seconds // bucket_seconds))
    start = now - timedelta(seconds=n * bucket_seconds)
    submitted = [0] * n
    finished: dict[str, list[int]] = {}
    for job in jobs:
        i = _bucket(job.created_at, start, bucket_seconds, n)
        if i is not None:
            submitted[i] += 1
        i = _bucket(job.finished_at, start, bucket_seconds, n)
        if i is not None and job.terminal:
            finished.setdefault(job.status.value, [0] * n)[i] += 1
    ends = [start + timedelta(seconds=(i + 1) * bucket_seconds) for i in range(n)]
    queued, running = _count_over_time(jobs, ends)
    return {
        "now": now.isoformat(),
        "start": start.isoformat(),
        "bucket_seconds": bucket_seconds,
        "submitted": submitted,
        "finished": finished,
        "queued": queued,
        "running": running,
        "queues": queues,
    }


async def dashboard_stats(
    store: JobStore,
    *,
    tenant: str | None,
    pipeline: str | None = None,
    window_seconds: float = 3600,
    bucket_seconds: float = 60,
    max_jobs: int = 5000,
) -> JSON:
    """``build_stats`` over the tenant's jobs of the last window (and as far back again, so jobs submitted
    before the window that ran inside it count), with the fleet's queues now."""
    now = utcnow()
    since = now - timedelta(seconds=2 * window_seconds)
    flt = JobFilter(tenant=tenant, pipeline=pipeline, created_after=since)
    jobs, truncated = await recent_jobs(store, flt, max_jobs=max_jobs)
    queues = await store.queue_stats()
    stats = build_stats(jobs, queues, now=now, window_seconds=window_seconds, bucket_seconds=bucket_seconds)
    stats["truncated"] = truncated
    return stats
