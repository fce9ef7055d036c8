"""What a chaos run found (``Report``), how it is measured from the store and the simulator, and its table.

Used by ``ingestd.testing.chaos`` (``tests/chaos``, ``bench/chaos.py``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingestd.models import JSON, JobFilter, JobStatus
from ingestd.store.protocol import JobStore


@dataclass
class Report:
    """What a chaos run found."""

    database: str
    kills: int = 0
    jobs_accepted: int = 0
    jobs_lost: list[str] = field(default_factory=list)
    jobs_in_store: int = 0
    finished_steps_run_twice: list[str] = field(default_factory=list)
    run_twice_details: list[JSON] = field(default_factory=list)
    provider_calls: int = 0
    provider_steps: int = 0
    provider_429s: int = 0
    resume_waits: list[float] = field(default_factory=list)
    slowest_resumes: list[dict[str, Any]] = field(default_factory=list)  # the five longest, with their events
    failures: dict[str, Any] = field(default_factory=dict)  # job id -> error, for jobs that did not succeed
    never_resumed: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    storm: dict[str, Any] = field(default_factory=dict)
    ordered_jobs: int = 0
    order_violations: list[str] = field(default_factory=list)  # jobs that started before their predecessor ended
    submit_failures: int = 0
    pg_restarted: bool = False
    pg_restart_seconds: float = 0.0  # how long `pg_ctlcluster restart` took
    seconds: float = 0.0
    drain_seconds: float = 0.0
    stale_refused: int = 0  # late writes of an execution that lost its lease, refused by the fence (chaos_faults)
    stale_accepted: int = 0  # step events of an earlier execution after a later one started: must stay 0
    leases_lost_seen: int = 0  # jobs a worker dropped when its heartbeat found the lease gone (before any write)
    transient_errors: int = 0  # job executions put back by an injected store error (chaos_faults transient)

    @property
    def max_resume_wait(self) -> float:
        return max(self.resume_waits, default=0.0)

    @property
    def all_terminal(self) -> bool:
        return not self.jobs_lost and not self.never_resumed


async def retrying(make: Callable[[], Any], attempts: int = 30) -> Any:
    for attempt in range(attempts):
        try:
            return await make()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    return None


async def drain(store: JobStore, ids: set[str], seconds: float) -> float:
    """Wait until every accepted job is terminal (or ``seconds`` pass); returns the seconds waited."""
    started = time.monotonic()
    pending, deadline = set(ids), started + seconds
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = await retrying(functools.partial(store.get_job, job_id))
            if job is not None and job.terminal:
                pending.discard(job_id)
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def drain_and_tally(store: JobStore, ids: set[str], seconds: float, report: Report) -> None:
    """Wait for the accepted jobs to end (``drain``), then count them: lost, statuses, stale writes accepted."""
    report.drain_seconds = await drain(store, ids, seconds)
    report.jobs_accepted = len(ids)
    await tally_jobs(store, ids, report)
    report.stale_accepted = await stale_accepted(store, ids)


async def tally_jobs(store: JobStore, ids: set[str], report: Report) -> None:
    """Lost jobs, final statuses, and how many jobs the store holds in all (a duplicate submit would show)."""
    statuses: Counter[str] = Counter()
    for job_id in sorted(ids):
        job = await store.get_job(job_id)
        if job is None or not job.terminal:
            report.jobs_lost.append(job_id)
        elif job.status != JobStatus.SUCCEEDED:
            report.failures[job_id] = job.error
        statuses[job.status.value if job else "missing"] += 1
    report.statuses = dict(statuses)
    cursor, total = None, 0
    while True:
        page = await store.list_jobs(JobFilter(), limit=500, cursor=cursor)
        total += len(page.jobs)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    report.jobs_in_store = total


async def tally_steps(store: JobStore, calls: list[tuple[str, float]], report: Report) -> None:
    """A finished step ran twice when the simulator saw a call for it after its checkpoint was committed."""
    steps: dict[str, dict[str, Any]] = {}
    for key, at in calls:
        job_id, _, step_key = key.partition(":")
        if job_id not in steps:
            steps[job_id] = await store.load_steps(job_id)
        step = steps[job_id].get(step_key)
        if step is not None and at > step.finished_at.timestamp():
            report.finished_steps_run_twice.append(key)
            report.run_twice_details.append(await _run_twice_detail(store, key, step.finished_at.timestamp(), calls))
    report.provider_calls = len(calls)
    report.provider_steps = len({key for key, _ in calls})


async def _run_twice_detail(store: JobStore, key: str, checkpoint: float, calls: list[tuple[str, float]]) -> JSON:
    """What happened around a step run after its checkpoint: its calls and the job's starts, relative to it."""
    job_id = key.partition(":")[0]
    starts = [
        {"t": round(e.at.timestamp() - checkpoint, 3), "type": e.type, **e.data}
        for e in await store.read_events(job_id)
        if e.type in ("job.started", "job.released", "job.finished")
    ]
    return {"key": key, "calls": [round(at - checkpoint, 3) for k, at in calls if k == key], "job": starts}


def count_refusals(stats: dict[str, Any]) -> int:
    """Calls the simulator refused with a 429 (each one retried by the step: a repeated call, not a re-run)."""
    return sum(int(route["outcomes"].get("429", 0)) for route in stats["routes"].values())


async def tally_resumes(store: JobStore, orphans: list[tuple[float, str]], report: Report) -> None:
    """For every job a killed worker held: seconds from the kill until another worker started it (or it ended)."""
    slowest: list[tuple[float, str, float]] = []
    for killed_at, job_id in orphans:
        after = [
            e.at.timestamp()
            for e in await store.read_events(job_id)
            if e.type in ("job.started", "job.finished") and e.at.timestamp() > killed_at
        ]
        if after:
            report.resume_waits.append(min(after) - killed_at)
            slowest.append((min(after) - killed_at, job_id, killed_at))
        else:
            report.never_resumed.append(job_id)
    for wait, job_id, killed_at in sorted(slowest, reverse=True)[:5]:
        events = [
            {"t": round(e.at.timestamp() - killed_at, 2), "type": e.type, "data": e.data}
            for e in await store.read_events(job_id)
            if e.type in ("job.started", "job.released", "job.finished", "step.retrying")
        ]
        report.slowest_resumes.append({"job": job_id, "wait": round(wait, 2), "events": events})


async def stale_accepted(store: JobStore, ids: set[str]) -> int:
    """Step events written by an execution after a later one of the same job had started."""
    count = 0
    for job_id in ids:
        current = 0
        for event in await store.read_events(job_id, limit=100_000):
            if event.type == "job.started":
                current = int(event.data.get("attempt", current))
            elif "job_attempt" in event.data and int(event.data["job_attempt"]) < current:
                count += 1
    return count


async def tally_order(store: JobStore, ordered: dict[str, list[str]], report: Report) -> None:
    """Jobs sharing an ordering key must run one at a time in submission order: each starts (for the first time)
    only after the previous one finished. Ids are time-sortable and made by one API process: creation order."""
    for jobs in ordered.values():
        ids = sorted(jobs)
        spans = [await _first_start_and_finish(store, job_id) for job_id in ids]
        report.ordered_jobs += len(ids)
        for i in range(1, len(ids)):
            start, before_end = spans[i][0], spans[i - 1][1]
            if start is not None and before_end is not None and start < before_end:
                report.order_violations.append(ids[i])


async def _first_start_and_finish(store: JobStore, job_id: str) -> tuple[float | None, float | None]:
    events = await store.read_events(job_id)
    starts = [e.at.timestamp() for e in events if e.type == "job.started"]
    ends = [e.at.timestamp() for e in events if e.type == "job.finished"]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def table(reports: list[Report]) -> str:
    rows: list[tuple[str, Callable[[Report], str]]] = [
        ("workers killed with SIGKILL", lambda r: str(r.kills)),
        ("PostgreSQL restarted mid-run", lambda r: f"yes ({r.pg_restart_seconds:.1f} s)" if r.pg_restarted else "no"),
        ("jobs accepted (202)", lambda r: str(r.jobs_accepted)),
        ("**jobs lost**", lambda r: str(len(r.jobs_lost))),
        ("jobs in the store", lambda r: str(r.jobs_in_store)),
        ("**finished steps run twice**", lambda r: str(len(r.finished_steps_run_twice))),
        ("provider calls / steps calling", lambda r: f"{r.provider_calls} / {r.provider_steps}"),
        ("  repeats: 429 retries, killed mid-step", _repeats_cell),
        ("jobs orphaned by the kill or fault", lambda r: str(len(r.resume_waits) + len(r.never_resumed))),
        ("**longest wait to resume**", lambda r: f"{r.max_resume_wait:.1f} s"),
        ("median wait to resume", lambda r: f"{_median(r.resume_waits):.1f} s"),
        ("**final statuses**", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))),
        ("idempotency storm", _storm_cell),
        ("ordering-key jobs run out of order", lambda r: f"{len(r.order_violations)} of {r.ordered_jobs}"),
        ("jobs dropped by a worker that found its lease gone", lambda r: str(r.leases_lost_seen)),
        ("stale writes refused by the fence", lambda r: str(r.stale_refused)),
        ("**stale writes accepted**", lambda r: str(r.stale_accepted)),
        ("job executions put back by an injected store error", lambda r: str(r.transient_errors)),
        ("submits retried by the client", lambda r: str(r.submit_failures)),
        ("run time (of which draining)", lambda r: f"{r.seconds:.0f} s ({r.drain_seconds:.0f} s)"),
    ]
    head = ["", *(r.database for r in reports)]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {label} | {' | '.join(cell(r) for r in reports)} |" for label, cell in rows]
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _repeats_cell(r: Report) -> str:
    killed = r.provider_calls - r.provider_steps - r.provider_429s - len(r.finished_steps_run_twice)
    return f"{r.provider_429s}, {killed}"


def _storm_cell(r: Report) -> str:
    s = r.storm
    if not s:
        return "-"
    conflicts = ", ".join(f"{v} x {k}" for k, v in s["conflicts_answered"].items())
    return f"{s['requests']} requests, {s['keys']} keys → {s['jobs_created']} jobs; other payload → {conflicts}"
