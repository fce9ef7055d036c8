"""What operators look at: ``/metrics`` (Prometheus), the dashboard at ``/ui`` and the JSON it reads
(``/v1/stats``, ``/v1/jobs/{id}/timeline``), and the readiness checks ``/readyz`` adds for a stuck queue and a
failing pipeline.

The dashboard is static files (``static/``: HTML, CSS, plain JS): no build step, nothing fetched from elsewhere.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import RedirectResponse, Response

from ingestd import errors
from ingestd.api import fleet, views
from ingestd.api import webhooks as webhook_routes
from ingestd.api.auth import current_tenant
from ingestd.models import Event
from ingestd.telemetry import health, metrics, stats, timeline

if TYPE_CHECKING:
    from ingestd.settings import Settings
    from ingestd.store.protocol import JobStore

router = APIRouter()
router.include_router(webhook_routes.router)  # secret, endpoints, a job's deliveries
router.include_router(fleet.router)  # /v1/workers

MAX_TIMELINE_EVENTS = 20_000  # a job with more events (a huge fan-out) shows its first 20k
_ASSETS = {"index.html": "text/html", "app.css": "text/css"} | {
    f"{name}.js": "text/javascript" for name in ("core", "jobs", "job", "render", "workers", "memory", "app")
}


def _live_window(settings: Settings) -> float:
    return max(3 * settings.heartbeat_seconds, settings.lease_seconds)


@router.get("/metrics", tags=["health"], summary="Prometheus metrics: this process' and the fleet's queues")
async def prometheus_metrics(request: Request) -> Response:
    state = request.app.state
    body = await metrics.render_metrics(
        state.store,
        pipelines=sorted(state.pipelines),
        providers=sorted(state.settings.provider_limits),
        live_within_seconds=_live_window(state.settings),
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/stats", tags=["dashboard"], summary="Queue depth and throughput over the last hour")
async def dashboard_stats(
    request: Request,
    tenant: Annotated[str, Depends(current_tenant)],
    pipeline: str | None = None,
    window: Annotated[float, Query(ge=60, le=24 * 3600)] = 3600,
    bucket: Annotated[float, Query(ge=5, le=3600)] = 60,
) -> views.JSONOut:
    body = await stats.dashboard_stats(
        request.app.state.store, tenant=tenant, pipeline=pipeline, window_seconds=window, bucket_seconds=bucket
    )
    return views.JSONOut(body)


async def _all_events(store: JobStore, job_id: str) -> list[Event]:
    out: list[Event] = []
    while len(out) < MAX_TIMELINE_EVENTS:
        page = await store.read_events(job_id, after=out[-1].seq if out else 0, limit=1000)
        out.extend(page)
        if len(page) < 1000:
            break
    return out


@router.get("/v1/jobs/{job_id}/timeline", tags=["dashboard"], summary="A job's waterfall, from its event log")
async def job_timeline(request: Request, job_id: str, tenant: Annotated[str, Depends(current_tenant)]) -> Any:
    store: JobStore = request.app.state.store
    job = await store.get_job(job_id, tenant)
    if job is None:
        raise errors.NotFound(f"no job {job_id}")
    body = timeline.build_timeline(job, await _all_events(store, job_id))
    body["job"]["input"] = job.input  # the dashboard shows what the job was asked to do
    body["job"]["files"] = [{"name": f.name, "size": f.size, "content_type": f.content_type} for f in job.files]
    return views.JSONOut(body)


@router.get("/ui", include_in_schema=False)
async def dashboard_root() -> Response:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/", include_in_schema=False)
async def dashboard_index() -> Response:
    return _asset("index.html")


@router.get("/ui/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    if name not in _ASSETS:
        raise errors.NotFound(f"no dashboard file {name}")
    return _asset(name)


def _asset(name: str) -> Response:
    body = resources.files("ingestd.api").joinpath("static", name).read_bytes()
    # no-cache: revalidate on each load, so an upgraded server never runs yesterday's script
    return Response(body, media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})


# --- readiness checks /readyz runs (ingestd.api.health.READINESS_CHECKS) ---------------------------------------


def _as_result(checks: list[health.Check]) -> dict[str, Any]:
    failed = [c.detail for c in checks if not c.ok]
    return {"ok": not failed, "detail": "; ".join(failed) or "ok", "pipelines": {c.name: c.detail for c in checks}}


async def check_queue_age(request: Request) -> dict[str, Any]:
    """Red when a pipeline's oldest queued job waited past ``ready_max_queue_age_seconds``."""
    store: JobStore = request.app.state.store
    settings: Settings = request.app.state.settings
    return _as_result(health.queue_age_checks(await store.queue_stats(), settings.ready_max_queue_age_seconds))


async def check_failure_rate(request: Request) -> dict[str, Any]:
    """Red when a pipeline's recent failure rate passes ``ready_max_failure_rate``."""
    state = request.app.state
    names = sorted(state.pipelines)
    return _as_result(await health.failure_rate_checks(state.store, state.settings, names))
