"""A job's waterfall, built from its event log: what the dashboard's job page draws.

Rows, in the order their work began: the queue wait (and waits after a retry or a hand-over), each execution
(attempt) of the job, each step and each fan-out item (grouped under its map). A row holds segments (a step
started again after a crash has two) and marks (retries, limiter waits). Times are seconds since the job was
submitted. Nothing here is stored: it is recomputed from the events on each request, so it is right whichever
process ran the job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ingestd.models import JSON, Event, EventType, Job, utcnow

_ITEM = re.compile(r"^(?P<group>.+)\[(?P<index>\d+)\]$")
# Events after which nothing of the current execution runs any more.
_EXECUTION_ENDS = {EventType.JOB_RELEASED.value, EventType.JOB_FINISHED.value, EventType.JOB_STARTED.value}


@dataclass
class Segment:
    start: float
    end: float | None = None  # None: still running
    state: str = "running"  # running | ok | failed | interrupted | waiting


@dataclass
class Mark:
    t: float
    kind: str  # retry | limiter | failed
    label: str  # t: when it happened (a limiter wait: when the wait began)
    seconds: float | None = None  # a limiter wait's length, a retry's delay


@dataclass
class Row:
    key: str
    label: str
    kind: str  # queue | attempt | step | item
    group: str | None = None
    segments: list[Segment] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    def open_segment(self) -> Segment | None:
        return self.segments[-1] if self.segments and self.segments[-1].end is None else None

    def close(self, t: float, state: str) -> None:
        seg = self.open_segment()
        if seg is not None:
            seg.end, seg.state = max(t, seg.start), state


class _Builder:
    def __init__(self, job: Job) -> None:
        self.t0 = job.created_at
        self.rows: dict[str, Row] = {}
        self.queue = self._row("queue", "queue wait", "queue")
        self.queue.segments.append(Segment(0.0, state="waiting"))
        self.attempts = 0

    def at(self, when: datetime) -> float:
        return round((when - self.t0).total_seconds(), 4)

    def _row(self, key: str, label: str, kind: str, group: str | None = None) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label, kind, group)
        return self.rows[key]

    def step_row(self, key: str) -> Row:
        item = _ITEM.match(key)
        if item:
            return self._row(key, key, "item", item["group"])
        return self._row(key, key, "step")

    def end_execution(self, t: float, state: str) -> None:
        """The running execution ended: close its attempt row and any step it left unfinished."""
        for row in self.rows.values():
            if row.kind in ("step", "item", "attempt"):
                row.close(t, "interrupted" if row.kind != "attempt" else state)

    def apply(self, ev: Event) -> None:
        t, data = self.at(ev.at), ev.data or {}
        handler = _HANDLERS.get(ev.type)
        if handler is not None:
            handler(self, t, data)
        elif "limiter" in ev.type:
            self.limiter(t, data)

    def limiter(self, t: float, data: JSON) -> None:
        key = data.get("key") or data.get("step")
        seconds = float(data.get("seconds") or data.get("wait_seconds") or 0.0)
        row = self.step_row(str(key)) if key else self.queue
        label = f"waited {seconds:.2f} s for {data.get('provider', 'a provider')}"
        # the event is written when the wait is over; the mark starts where the wait began
        row.marks.append(Mark(round(max(0.0, t - seconds), 4), "limiter", label, seconds))


def _started(b: _Builder, t: float, data: JSON) -> None:
    b.end_execution(t, "interrupted")
    b.queue.close(t, "waiting")
    b.attempts += 1
    worker = data.get("worker") or data.get("worker_id")
    label = f"attempt {data.get('attempt', b.attempts)}" + (f" on {worker}" if worker else "")
    row = b._row(f"attempt:{b.attempts}", label, "attempt")
    row.segments.append(Segment(t))


def _requeued(b: _Builder, t: float, data: JSON) -> None:
    b.end_execution(t, "released")
    if b.queue.open_segment() is None:
        b.queue.segments.append(Segment(t, state="waiting"))


def _finished(b: _Builder, t: float, data: JSON) -> None:
    status = str(data.get("status", "finished"))
    b.end_execution(t, status)
    b.queue.close(t, "canceled" if status == "canceled" else "waiting")


def _step_started(b: _Builder, t: float, data: JSON) -> None:
    row = b.step_row(str(data.get("key")))
    row.close(t, "interrupted")
    row.segments.append(Segment(t))


def _step_finished(b: _Builder, t: float, data: JSON) -> None:
    row = b.step_row(str(data.get("key")))
    if row.open_segment() is None:  # no step.started seen (events trimmed): draw it from its duration
        row.segments.append(Segment(max(0.0, t - float(data.get("seconds") or 0.0))))
    row.close(t, "ok")
    wait = data.get("limiter_wait_seconds")
    if wait:
        row.marks.append(Mark(row.segments[-1].start, "limiter", f"waited {float(wait):.2f} s for limits", wait))


def _step_retrying(b: _Builder, t: float, data: JSON) -> None:
    row = b.step_row(str(data.get("key")))
    delay = float(data.get("delay") or 0.0)
    label = f"attempt {data.get('attempt', '?')} failed: {data.get('reason', '')}"[:300]
    row.marks.append(Mark(t, "retry", label, delay))


def _item_failed(b: _Builder, t: float, data: JSON) -> None:
    row = b.step_row(str(data.get("key")))
    if row.open_segment() is None:
        row.segments.append(Segment(t))
    row.close(t, "failed")
    error = data.get("error") or {}
    reason = error.get("detail", "failed") if isinstance(error, dict) else str(error)
    row.marks.append(Mark(t, "failed", str(reason)[:300]))


_HANDLERS: dict[str, Any] = {
    EventType.JOB_STARTED.value: _started,
    EventType.JOB_RELEASED.value: _requeued,
    "job.retry_scheduled": _requeued,
    "job.requeued": _requeued,
    EventType.JOB_FINISHED.value: _finished,
    EventType.STEP_STARTED.value: _step_started,
    EventType.STEP_FINISHED.value: _step_finished,
    EventType.STEP_RETRYING.value: _step_retrying,
    EventType.ITEM_FAILED.value: _item_failed,
    EventType.STEP_FAILED.value: _item_failed,  # a plain step that failed for good: drawn the same way
}


def job_summary(job: Job) -> JSON:
    """The job fields the dashboard shows."""
    return {
        "id": job.id,
        "tenant": job.tenant,
        "pipeline": job.pipeline,
        "status": job.status.value,
        "attempt": job.attempt,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress": asdict(job.progress),
        "usage": job.usage,
        "result": job.result,
        "error": job.error,
        "ordering_key": job.ordering_key,
        "units": job.units,
    }


def build_timeline(job: Job, events: Sequence[Event], now: datetime | None = None) -> JSON:
    """The waterfall of ``job`` from its ``events`` (oldest first)."""
    b = _Builder(job)
    for ev in events:
        b.apply(ev)
    end = job.finished_at if job.terminal and job.finished_at else (now or utcnow())
    rows = [r for r in b.rows.values() if r.segments or r.marks]
    rows.sort(key=lambda r: (r.kind != "queue", r.kind != "attempt", r.segments[0].start if r.segments else 0.0))
    return {
        "job": job_summary(job),
        "t0": job.created_at.isoformat(),
        "elapsed": max(0.0, b.at(end)),
        "terminal": job.terminal,
        "last_seq": events[-1].seq if events else 0,
        "rows": [asdict(r) for r in rows],
    }
