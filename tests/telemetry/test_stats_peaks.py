"""The dashboard's depth chart counts the busiest moment of each bucket, not only its end: a burst of jobs
that started and finished inside one minute shows as its peak (issue 13: "max 1" while 5 ran)."""

from __future__ import annotations

from datetime import timedelta

from test_telemetry_hooks import make_job

from ingestd.models import JobStatus, utcnow
from ingestd.telemetry.stats import build_stats


def test_a_burst_inside_one_bucket_shows_as_its_peak() -> None:
    now = utcnow().replace(second=0, microsecond=0)
    minute = now - timedelta(minutes=10)  # the bucket [now - 10 min, now - 9 min)
    at = lambda s: minute + timedelta(seconds=s)  # noqa: E731
    jobs = [  # five run at once from +10 s to about +20 s, two more wait meanwhile and run from +20 s to +30 s
        *[make_job(created_at=at(9), run_at=at(9), started_at=at(10), finished_at=at(20 + i * 0.1),
                   status=JobStatus.SUCCEEDED) for i in range(5)],
        *[make_job(created_at=at(12), run_at=at(12), started_at=at(21), finished_at=at(30),
                   status=JobStatus.SUCCEEDED) for _ in range(2)],
    ]  # fmt: skip
    stats = build_stats(jobs, [], now=now, window_seconds=3600, bucket_seconds=60)
    b = 50  # the bucket of `minute`
    assert stats["running"][b] == 0 and stats["queued"][b] == 0  # sampled at the minute's end: nothing
    assert stats["running_peak"][b] == 5 and stats["queued_peak"][b] == 5  # 5 queued at +9 s, then 2 more at +12 s
    assert stats["running_peak"][b - 1] == 0 and stats["running_peak"][b + 1] == 0


def test_a_job_running_across_buckets_counts_in_each() -> None:
    now = utcnow().replace(second=0, microsecond=0)
    job = make_job(created_at=now - timedelta(minutes=5), run_at=now - timedelta(minutes=5),
                   started_at=now - timedelta(minutes=4, seconds=30), status=JobStatus.RUNNING)  # fmt: skip
    stats = build_stats([job], [], now=now, window_seconds=600, bucket_seconds=60)
    assert stats["running_peak"] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert stats["queued_peak"] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
