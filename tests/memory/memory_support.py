"""Helpers for the memory tests: sessions that mention the same people under varied spellings, a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import workers

from ingestd.api.app import create_app
from ingestd.models import Job, NewJob
from ingestd.pipeline import Pipeline
from ingestd.pipelines import build_pipelines, memory
from ingestd.settings import Settings
from ingestd.store import open_store
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

FAST = workers.FAST_WORKER


def fast_settings(url: str, **overrides: Any) -> Settings:
    """FAST, but a 30 s lease: these settings run in-process workers, which no test kills, and FAST's 2 s lease ran
    out on a loaded machine (late heartbeats), so that a job ran again and made its calls in flight twice."""
    return workers.fast_settings(url, **{"lease_seconds": 30.0, **overrides})


def message(content: str, at: str, role: str = "user") -> dict[str, str]:
    return {"role": role, "content": content, "timestamp": at}


def session(user: str, session_id: str, at: str, *lines: str) -> dict[str, Any]:
    """A session whose user lines alternate with short assistant replies."""
    messages = []
    for line in lines:
        messages.append(message(line, at))
        messages.append(message("Thanks, I will remember that.", at, role="assistant"))
    return {"user_id": user, "session_id": session_id, "messages": messages, "reference_time": at}


FIRST = session(
    "alice",
    "s1",
    "2026-03-01T10:00:00+00:00",
    "My friend Emma Schmidt lives in Lisbon and works at Stripe.",
    "Tom Becker lives in Berlin.",
    "I work at Acme.",
)
SECOND = session(
    "alice",
    "s2",
    "2026-06-01T10:00:00+00:00",
    "I had lunch with emma schmidt today.",
    "Ms. Schmidt now lives in Porto.",
    "Tom Becker lives in Berlin.",
)


@asynccontextmanager
async def running_worker(store: JobStore, settings: Settings, worker_id: str | None = None) -> AsyncIterator[Worker]:
    """A worker with the memory pipeline, whose providers' HTTP connections are closed after it stops."""
    pipelines = {**build_pipelines(settings), "memory": memory.build(settings)}
    try:
        async with workers.running_worker(store, settings, pipelines, worker_id) as worker:
            yield worker
    finally:
        await pipelines["memory"].run.__self__.aclose()  # type: ignore[attr-defined]


async def migrated(url: str) -> str:
    """``url`` with the job store's migrations applied (they make the memory graph's tables too)."""
    await (await open_store(url)).close()
    return url


async def submit(store: JobStore, inp: dict[str, Any], tenant: str = "default") -> Job:
    pipeline = memory.build(Settings())
    new = NewJob(
        pipeline="memory",
        input=inp,
        tenant=tenant,
        ordering_key=pipeline.ordering_key(pipeline.input_model.model_validate(inp)),
        units=float(len(inp["messages"])),
    )
    return (await store.submit(new)).job


async def wait_finished(store: JobStore, job_id: str, timeout: float = 60.0) -> Job:
    return await workers.wait_finished(store, job_id, timeout)


@asynccontextmanager
async def api_client(
    store: JobStore, settings: Settings, providers: memory.MemoryProviders | None = None, key: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app (API + a worker in process) over ``httpx.ASGITransport``, its lifespan running."""
    pipeline = memory.build(settings, providers)
    app = create_app(settings, store=store, pipelines={"memory": pipeline}, run_worker=True)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test", headers=headers) as client:
            yield client
    await pipeline.run.__self__.aclose()  # type: ignore[attr-defined]


async def post_session(client: httpx.AsyncClient, inp: dict[str, Any]) -> str:
    response = await client.post("/v1/pipelines/memory/jobs", json=inp)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def job_done(client: httpx.AsyncClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job is terminal; its JSON."""
    return await workers.job_via_api(client, job_id, timeout)


BUILT: list[Pipeline] = []  # memory pipelines built by recorded_memory, newest last


def recorded_memory(settings: Settings) -> Pipeline:
    """The memory pipeline, remembered in :data:`BUILT` (``pipeline_modules=["memory_support:recorded_memory"]``):
    a test reaches the instance a worker process built for itself."""
    BUILT.append(memory.build(settings))
    return BUILT[-1]
