"""The waterfall and the charts' numbers, from hand-written event logs and jobs (no I/O)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_telemetry_hooks import make_job

from ingestd.models import Event, JobStatus, utcnow
from ingestd.telemetry.stats import build_stats
from ingestd.telemetry.timeline import build_timeline

T0 = utcnow() - timedelta(minutes=5)


def events(*spec: tuple[float, str, dict[str, Any]]) -> list[Event]:
    return [Event("job1", i + 1, kind, data, T0 + timedelta(seconds=t)) for i, (t, kind, data) in enumerate(spec)]


def rows_by_key(timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in timeline["rows"]}


def test_waterfall_of_a_job_that_crashed_once_and_retried_a_step() -> None:
    log = events(
        (0.0, "job.queued", {}),
        (2.0, "job.started", {"worker": "w1", "attempt": 1}),
        (2.1, "step.started", {"key": "prepare"}),
        (2.5, "step.finished", {"key": "prepare", "attempts": 1, "seconds": 0.4}),
        (2.6, "step.started", {"key": "work[0]"}),
        (2.6, "step.started", {"key": "work[1]"}),
        (3.0, "step.retrying", {"key": "work[1]", "attempt": 1, "delay": 0.5, "reason": "TimeoutError"}),
        (3.5, "step.finished", {"key": "work[0]", "attempts": 1, "seconds": 0.9}),
        (4.0, "limiter.waited", {"key": "work[1]", "provider": "llm", "seconds": 0.5}),
        # the worker dies here; another one takes the job over after the lease expired
        (20.0, "job.started", {"worker": "w2", "attempt": 2}),
        (20.1, "step.started", {"key": "work[1]"}),
        (21.0, "item.failed", {"key": "work[1]", "index": 1, "error": {"detail": "bad item"}}),
        (21.5, "job.finished", {"status": "partial"}),
    )
    job = make_job(created_at=T0, status=JobStatus.PARTIAL, finished_at=T0 + timedelta(seconds=21.5), attempt=2)
    timeline = build_timeline(job, log)
    rows = rows_by_key(timeline)

    assert [r["key"] for r in timeline["rows"]][:3] == ["queue", "attempt:1", "attempt:2"]
    assert rows["queue"]["segments"] == [{"start": 0.0, "end": 2.0, "state": "waiting"}]
    assert rows["attempt:1"]["segments"][0]["state"] == "interrupted"
    assert rows["attempt:2"]["label"] == "attempt 2 on w2"
    assert rows["attempt:2"]["segments"] == [{"start": 20.0, "end": 21.5, "state": "partial"}]
    assert rows["prepare"]["segments"] == [{"start": 2.1, "end": 2.5, "state": "ok"}]
    work1 = rows["work[1]"]
    assert work1["group"] == "work" and work1["kind"] == "item"
    assert [s["state"] for s in work1["segments"]] == ["interrupted", "failed"]
    assert work1["segments"][0] == {"start": 2.6, "end": 20.0, "state": "interrupted"}
    assert {m["kind"] for m in work1["marks"]} == {"retry", "limiter", "failed"}
    limiter = next(m for m in work1["marks"] if m["kind"] == "limiter")
    assert limiter["t"] == 3.5 and limiter["seconds"] == 0.5  # drawn where the wait began
    assert timeline["elapsed"] == 21.5 and timeline["terminal"] and timeline["last_seq"] == 13


def test_waterfall_of_a_running_job_leaves_its_steps_open() -> None:
    log = events((0.0, "job.queued", {}), (1.0, "job.started", {}), (1.5, "step.started", {"key": "decode"}))
    job = make_job(created_at=T0, started_at=T0 + timedelta(seconds=1))
    timeline = build_timeline(job, log, now=T0 + timedelta(seconds=9))
    rows = rows_by_key(timeline)
    assert rows["decode"]["segments"] == [{"start": 1.5, "end": None, "state": "running"}]
    assert rows["attempt:1"]["segments"][0]["end"] is None
    assert timeline["elapsed"] == 9.0 and not timeline["terminal"]


def test_waterfall_of_a_queued_job_is_one_open_wait() -> None:
    job = make_job(created_at=T0, status=JobStatus.QUEUED, started_at=None, attempt=0)
    timeline = build_timeline(job, events((0.0, "job.queued", {})), now=T0 + timedelta(seconds=4))
    assert timeline["rows"] == [
        {"key": "queue", "label": "queue wait", "kind": "queue", "group": None, "marks": [],
         "segments": [{"start": 0.0, "end": None, "state": "waiting"}]}
    ]  # fmt: skip


def test_stats_count_submissions_completions_and_queue_depth_per_minute() -> None:
    now = utcnow()
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    jobs = [
        # finished 30.5 min ago after waiting 5 min
        make_job(created_at=ago(40), run_at=ago(40), started_at=ago(35), finished_at=ago(30.5),
                 status=JobStatus.SUCCEEDED),
        make_job(created_at=ago(20), run_at=ago(20), started_at=ago(19.5), finished_at=ago(10.2),
                 status=JobStatus.FAILED),
        make_job(created_at=ago(3), run_at=ago(3), started_at=None, status=JobStatus.QUEUED),
        # submitted before the window, still running
        make_job(created_at=ago(90), run_at=ago(90), started_at=ago(80), status=JobStatus.RUNNING),
    ]  # fmt: skip
    queues = [{"pipeline": "demo", "queued": 1, "running": 1, "oldest_queued_age": 180.0}]
    stats = build_stats(jobs, queues, now=now, window_seconds=3600, bucket_seconds=60)
    assert len(stats["submitted"]) == 60 and sum(stats["submitted"]) == 3
    assert sum(stats["finished"]["succeeded"]) == 1 and stats["finished"]["succeeded"][29] == 1
    assert sum(stats["finished"]["failed"]) == 1
    assert stats["queued"][-1] == 1 and stats["running"][-1] == 1
    assert stats["queued"][22] == 1  # 37 min ago, the first job was still waiting
    assert stats["running"][0] == 1 and stats["queues"] == queues
