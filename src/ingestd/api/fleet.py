"""``GET /v1/workers``: the workers that heartbeat lately, and which of the tenant's running jobs each one runs.

The dashboard's workers page reads it. A worker's own record holds only its id, its last heartbeat and how many
jobs it leases; which jobs those are comes from each running job's last ``job.started`` event (its ``worker``),
so another tenant's jobs are counted but never named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request

from ingestd.api import views
from ingestd.api.auth import current_tenant
from ingestd.models import EventType, Job, JobFilter, JobStatus
from ingestd.store.protocol import LimiterStore

if TYPE_CHECKING:
    from ingestd.settings import Settings
    from ingestd.store.protocol import JobStore

router = APIRouter(tags=["dashboard"])
MAX_RUNNING = 200  # the tenant's running jobs the page names (the oldest beyond this are only counted)


def live_window(settings: Settings) -> float:
    """How recent a heartbeat must be for its worker to count as alive."""
    return max(3 * settings.heartbeat_seconds, settings.lease_seconds)


_RUNNERS: dict[tuple[str, int], str | None] = {}  # (job id, attempt) → its worker: an attempt never moves
_MAX_RUNNERS = 5000


async def _runner_of(store: JobStore, job: Job) -> str | None:
    """``_runner``, read once per attempt of the job (the page asks every 2 s)."""
    key = (job.id, job.attempt)
    if key not in _RUNNERS:
        if len(_RUNNERS) >= _MAX_RUNNERS:
            del _RUNNERS[next(iter(_RUNNERS))]
        _RUNNERS[key] = await _runner(store, job.id)
    return _RUNNERS[key]


async def _runner(store: JobStore, job_id: str) -> str | None:
    """The worker named by the job's last ``job.started`` event (None: none in its first 5000 events)."""
    worker: str | None = None
    after = 0
    for _ in range(5):
        events = await store.read_events(job_id, after=after, limit=1000)
        for ev in events:
            if ev.type == EventType.JOB_STARTED.value:
                worker = str((ev.data or {}).get("worker") or "") or None
        if len(events) < 1000:
            break
        after = events[-1].seq
    return worker


def _running(job: Job) -> dict[str, object]:
    progress = {"stage": job.progress.stage, "done": job.progress.done, "total": job.progress.total}
    started = job.started_at.isoformat() if job.started_at else None
    return {"id": job.id, "pipeline": job.pipeline, "progress": progress, "started_at": started}


async def _providers(store: JobStore, settings: Settings) -> list[dict[str, object]]:
    """Each limited provider: its configured limits, and calls in flight and waiting across the fleet now."""
    rows: dict[str, dict[str, object]] = {
        name: {"provider": name, "in_flight": 0, "waiting": 0, "concurrency": limit.concurrency, "rate": limit.rate}
        | {"per_seconds": limit.per_seconds}
        for name, limit in sorted(settings.provider_limits.items())
    }
    stats = await store.provider_limiter_stats() if isinstance(store, LimiterStore) else []
    for stat in stats:
        name = str(stat["provider"])
        row = rows.setdefault(name, {"provider": name, "rate": None, "per_seconds": None})
        row.update({k: stat[k] for k in ("in_flight", "waiting")})
        row["concurrency"] = stat["concurrency"] if stat["concurrency"] is not None else row.get("concurrency")
    return list(rows.values())


@router.get(
    "/v1/workers", summary="Live workers (last heartbeat, jobs leased, the tenant's jobs each runs), provider limits"
)
async def list_workers(request: Request, tenant: Annotated[str, Depends(current_tenant)]) -> views.JSONOut:
    store: JobStore = request.app.state.store
    window = live_window(request.app.state.settings)
    workers = await store.live_workers(window)
    page = await store.list_jobs(JobFilter(tenant, status=JobStatus.RUNNING), limit=MAX_RUNNING)
    by_worker: dict[str, list[dict[str, object]]] = {}
    unassigned: list[dict[str, object]] = []
    for job in page.jobs:
        runner = await _runner_of(store, job)
        (by_worker.setdefault(runner, []) if runner else unassigned).append(_running(job))
    body = [
        {
            "id": w["id"],
            "last_seen": w["last_seen"].isoformat() if w["last_seen"] else None,
            "jobs": w["jobs"],
            "running": by_worker.pop(str(w["id"]), []),
        }
        for w in workers
    ]
    # running jobs whose worker stopped heartbeating: their lease runs out and another worker picks them up
    orphaned = [job for jobs in by_worker.values() for job in jobs] + unassigned
    providers = await _providers(store, request.app.state.settings)
    return views.JSONOut({"live_within_seconds": window, "workers": body, "orphaned": orphaned, "providers": providers})
