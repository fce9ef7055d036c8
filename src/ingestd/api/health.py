"""``/healthz`` (the process answers) and ``/readyz`` (the store answers and takes writes, a worker heartbeats,
no pipeline's queue is stuck and none keeps failing: the last two from ``ingestd.api.observability``).

``/readyz`` collects named checks so more can join it (queue not stuck, pipelines not failing); when any
fails it answers 503 problem+json listing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingestd.api import observability, problems, views

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> views.JSONOut:
    return views.JSONOut({"status": "ok"})


async def _check_workers(request: Request) -> dict[str, Any]:
    store: JobStore = request.app.state.store
    settings = request.app.state.settings
    workers = await store.live_workers(within_seconds=settings.lease_seconds)
    return {"ok": bool(workers) or not settings.ready_require_worker, "workers": len(workers)}


async def _check_store(request: Request) -> dict[str, Any]:
    store: JobStore = request.app.state.store
    stats = await store.queue_stats()
    return {"ok": True, "queues": stats}


async def _check_store_writes(request: Request) -> dict[str, Any]:
    """A tiny blob written and deleted: on PostgreSQL a committed row, on SQLite a file beside the database, so a
    full disk or a read-only database turns readiness red, not only an unreachable one."""
    store: JobStore = request.app.state.store
    ref, _ = await store.blobs.put(_probe_chunks())
    await store.blobs.delete(ref)
    return {"ok": True}


async def _probe_chunks() -> AsyncIterator[bytes]:
    yield b"ingestd readiness probe\n"


READINESS_CHECKS = {
    "store": _check_store,
    "store_writes": _check_store_writes,
    "workers": _check_workers,
    "queue_age": observability.check_queue_age,
    "failure_rate": observability.check_failure_rate,
}


async def _run_check(request: Request, name: str) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(READINESS_CHECKS[name](request), CHECK_TIMEOUT)
    except Exception as exc:  # a failing check is an answer here, not an error
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


@router.get("/readyz", summary="Readiness: the store answers and takes writes, a worker heartbeats")
async def readyz(request: Request) -> Response:
    names = list(READINESS_CHECKS)
    results = await asyncio.gather(*(_run_check(request, n) for n in names))
    checks = dict(zip(names, results, strict=True))
    if all(c["ok"] for c in checks.values()):
        return views.JSONOut({"status": "ready", "checks": checks})
    failing = ", ".join(n for n, c in checks.items() if not c["ok"])
    body = problems.problem(503, f"not ready: {failing}", code="not-ready", instance="/readyz", checks=checks)
    return problems.ProblemResponse(body, status_code=503, headers={"Retry-After": "5"})
