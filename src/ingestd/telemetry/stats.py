"""The numbers behind the dashboard's charts: queue depth and throughput over the last hour, from the store.

Computed on request from the jobs themselves (``list_jobs``) and ``queue_stats``, so every API process shows the
same thing and nothing has to be sampled in the background. The queue depth at a past moment is reconstructed
from each job's ``created_at`` / ``started_at`` / ``finished_at`` (a job retried later counts as running until
it ends): at each bucket's end (``queued``, ``running``) and at its busiest moment (``queued_peak``,
``running_peak``: five jobs that ran for ten seconds inside one minute are a peak of 5, not a sample of 0).
Reading is capped at ``max_jobs``; past that the charts say ``truncated`` and Prometheus is the place
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


def _changes(jobs: list[Job]) -> list[tuple[datetime, int, int, int]]:
    """(when, order, Δqueued, Δrunning) of every job, ends before starts at the same moment (order 0 then 1)."""
    out: list[tuple[datetime, int, int, int]] = []
    for job in jobs:
        begin = max(job.created_at, job.run_at)
        waited_until = job.started_at or job.finished_at
        if waited_until is None or waited_until > begin:
            out.append((begin, 1, 1, 0))
            if waited_until is not None:
                out.append((waited_until, 0, -1, 0))
        if job.started_at is not None:
            out.append((job.started_at, 1, 0, 1))
            if job.finished_at is not None:
                out.append((job.finished_at, 0, 0, -1))
    return sorted(out, key=lambda c: (c[0], c[1]))


def _peaks(jobs: list[Job], start: datetime, bucket: float, n: int) -> tuple[list[int], list[int]]:
    """The most jobs queued and running at any moment of each bucket (a sample at its end misses a burst)."""
    changes = _changes(jobs)
    queued_peak, running_peak = [0] * n, [0] * n
    queued = running = i = 0
    for b in range(n):
        bucket_start = start + timedelta(seconds=b * bucket)
        bucket_end = bucket_start + timedelta(seconds=bucket)
        while i < len(changes) and changes[i][0] <= bucket_start:
            queued, running, i = queued + changes[i][2], running + changes[i][3], i + 1
        top_q, top_r = queued, running
        while i < len(changes) and changes[i][0] < bucket_end:
            queued, running, i = queued + changes[i][2], running + changes[i][3], i + 1
            top_q, top_r = max(top_q, queued), max(top_r, running)
        queued_peak[b], running_peak[b] = top_q, top_r
    return queued_peak, running_peak


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
    queued_peak, running_peak = _peaks(jobs, start, bucket_seconds, n)
    return {
        "now": now.isoformat(),
        "start": start.isoformat(),
        "bucket_seconds": bucket_seconds,
        "submitted": submitted,
        "finished": finished,
        "queued": queued,
        "running": running,
        "queued_peak": queued_peak,
        "running_peak": running_peak,
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
