"""How a job looks over HTTP, how long a client should wait before asking again, and waiting for a change.

Shared by the submit route and the job routes.
"""

from __future__ import annotations

import time
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from ingestd.models import JSON, Job, JobStatus, utcnow

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

MIN_RETRY_AFTER = 1
MAX_RETRY_AFTER = 600
DEFAULT_RETRY_AFTER = 2  # before any job of the pipeline has finished, there is nothing to estimate from
MAX_WAIT_SECONDS = 60.0
_DURATIONS_TTL = 5.0  # recent durations move slowly; one query per pipeline every few seconds is plenty
HAS_RESULT = frozenset({JobStatus.SUCCEEDED, JobStatus.PARTIAL})


class JSONOut(Response):
    """A JSON answer serialised with orjson (FastAPI's ORJSONResponse is deprecated)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_links(job_id: str) -> dict[str, str]:
    base = f"/v1/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events", "result": f"{base}/result", "cancel": f"{base}/cancel"}


def render_job(job: Job, eta_seconds: float | None = None, *, with_output: bool = False) -> JSON:
    """The job as clients see it (``JobOut`` in the OpenAPI document); ``with_output``: a finished job's result
    itself under ``output`` too (the answer to a submit that waited with ``Prefer: wait``)."""
    links = job_links(job.id)
    progress: dict[str, Any] = {"stage": job.progress.stage, "done": job.progress.done, "total": job.progress.total}
    if eta_seconds is not None and not job.terminal:
        progress["eta_seconds"] = round(eta_seconds, 1)
    return {
        "id": job.id,
        "status": job.status.value,
        "pipeline": job.pipeline,
        "progress": progress,
        "attempt": job.attempt,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
        "expires_at": _iso(job.expires_at),
        "cancel_requested": job.cancel_requested,
        "ordering_key": job.ordering_key,
        "files": [{"name": f.name, "size": f.size, "content_type": f.content_type, "meta": f.meta} for f in job.files],
        "usage": job.usage,
        "error": job.error,
        "result": links["result"] if job.status in HAS_RESULT else None,
        "links": links,
    } | ({"output": job.result if job.result is not None else {}} if with_output and job.status in HAS_RESULT else {})


def job_headers(job: Job, retry_after: int | None) -> dict[str, str]:
    """``Retry-After`` while the job runs, ``Expires`` once it is kept only for the retention window."""
    headers: dict[str, str] = {}
    if not job.terminal and retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if job.terminal and job.expires_at:
        headers["Expires"] = format_datetime(job.expires_at, usegmt=True)
    return headers


def pace_eta(started: datetime, progressed: datetime, done: int, total: int, now: datetime) -> float | None:
    """Seconds left at the job's own pace: ``done`` items took until ``progressed`` (the job's last progress
    write), so the rest take ``(progressed - started) * left / done`` from then, counting down until the next count
    arrives (not growing with the wait, as ``elapsed * left / done`` would between two items). None once run out.
    """
    took = (max(progressed, started) - started).total_seconds()
    if done <= 0 or took <= 0:
        return None
    left = took * (total - done) / done - (now - max(progressed, started)).total_seconds()
    return left if left > 0 else None


class Estimator:
    """ETAs from how long recent jobs of the same pipeline took per unit of input."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, list[tuple[float, float]]]] = {}

    async def _durations(self, store: JobStore, pipeline: str) -> list[tuple[float, float]]:
        now = time.monotonic()
        hit = self._cache.get(pipeline)
        if hit and now - hit[0] < _DURATIONS_TTL:
            return hit[1]
        durations = await store.recent_durations(pipeline)
        self._cache[pipeline] = (now, durations)
        return durations

    async def remaining(self, store: JobStore, job: Job) -> float | None:
        """Seconds the job probably still needs (None: unknown, or the job is over).

        From the job's own pace while it reports items done (``pace_eta``), else from recent jobs of the pipeline
        per unit of input; an estimate that has run out (the job is slower than usual) is unknown, not 0.
        """
        if job.terminal:
            return None
        now = utcnow()
        elapsed = (now - job.started_at).total_seconds() if job.started_at else 0.0
        done, total = job.progress.done, job.progress.total
        if 0 < done < total and job.started_at is not None:
            return pace_eta(job.started_at, job.updated_at or now, done, total, now)
        durations = await self._durations(store, job.pipeline)
        if not durations:
            return None
        units = sum(u for u, _ in durations)
        seconds = sum(s for _, s in durations)
        if units > 0 and job.units > 0:
            expected = seconds / units * job.units
        else:  # a pipeline that does not size its input: the mean duration
            expected = seconds / len(durations)
        return expected - elapsed if expected > elapsed else None

    async def retry_after(self, store: JobStore, job: Job) -> tuple[int, float | None]:
        """(the ``Retry-After`` value in [1, 600] s, the raw estimate)."""
        eta = await self.remaining(store, job)
        if eta is None:
            return DEFAULT_RETRY_AFTER, None
        return int(min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, round(eta)))), eta


async def _last_seq(store: JobStore, job_id: str, after: int = 0) -> int:
    seq = after
    while True:
        events = await store.read_events(job_id, after=seq, limit=1000)
        if not events:
            return seq
        seq = events[-1].seq
        if len(events) < 1000:
            return seq


async def wait_for_status_change(
    store: JobStore, job_id: str, tenant: str, timeout: float, *, until_terminal: bool = False
) -> Job | None:
    """Wait up to ``timeout`` s for the job's status to change (or, with ``until_terminal``, to be final).

    The last event's sequence number is read *before* the job, so a change committed in between has a later
    event and wakes us: no change can slip through unseen.
    """
    deadline = time.monotonic() + min(timeout, MAX_WAIT_SECONDS)
    seq = await _last_seq(store, job_id)
    job = await store.get_job(job_id, tenant)
    if job is None or job.terminal:
        return job
    first_status = job.status
    while (left := deadline - time.monotonic()) > 0:
        if not await store.wait_for_events(job_id, seq, timeout=left):
            break
        seq = await _last_seq(store, job_id, seq)
        job = await store.get_job(job_id, tenant)
        if job is None or job.terminal or (not until_terminal and job.status != first_status):
            return job
    return job
