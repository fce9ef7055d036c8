"""The FastAPI application: ``create_app`` wires the routes, the error handling and the lifespan.

The lifespan opens the store (unless one was given), migrates it, builds the pipelines (unless given; it closes
those it built at shutdown, after the worker), and with ``run_worker=True`` (``ingestd serve``) runs a ``Worker``
in the same process and event loop. API processes keep
no state of their own beyond caches, so several may serve one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from ingestd.api import (
    admin_keys,
    auth,
    batch,
    docs,
    events,
    guards,
    health,
    jobs,
    observability,
    problems,
    replay,
    retry,
    schemas,
    views,
)
from ingestd.api import pipelines as pipeline_routes
from ingestd.settings import Settings

if TYPE_CHECKING:
    from ingestd.pipeline import Pipeline
    from ingestd.store.protocol import JobStore

log = logging.getLogger("ingestd.api")


def _optional_router(module: str) -> Any:
    """A router owned by another part of ingestd, included when it exists."""
    try:
        return importlib.import_module(module).router
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


@contextlib.asynccontextmanager
async def _worker_running(app: FastAPI) -> AsyncIterator[None]:
    from ingestd.worker import Worker

    state = app.state
    worker = Worker(state.store, state.pipelines, state.settings)
    task = asyncio.create_task(worker.run(), name="ingestd worker")
    state.worker = worker
    try:
        yield
    finally:
        await worker.stop(grace=state.settings.shutdown_grace_seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _lifespan(
    settings: Settings, store: JobStore | None, pipes: Mapping[str, Pipeline] | None, run_worker: bool
) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        if store is None:
            from ingestd.store import open_store

            opened: JobStore = await open_store(settings.database_url)
        else:
            opened = store
        try:
            await opened.migrate()
            app.state.store = opened
            async with contextlib.AsyncExitStack() as stack:
                if pipes is None:  # built here, closed here (after the worker stopped); given ones, by the caller
                    from ingestd.pipelines import build_pipelines, close_pipelines

                    app.state.pipelines = build_pipelines(settings)
                    stack.push_async_callback(close_pipelines, app.state.pipelines)
                else:
                    app.state.pipelines = dict(pipes)
                if run_worker:
                    await stack.enter_async_context(_worker_running(app))
                yield
        finally:
            if own_store:
                await opened.close()

    return lifespan


def create_app(
    settings: Settings | None = None,
    store: JobStore | None = None,
    pipelines: Mapping[str, Pipeline] | None = None,
    run_worker: bool = False,
) -> FastAPI:
    """The ingestd HTTP API.

    Args:
        settings: configuration (default: from the environment).
        store: an open store to use (the caller closes it); default: ``open_store(settings.database_url)``.
        pipelines: the pipelines by name; default: ``build_pipelines(settings)``.
        run_worker: also run a worker in this process (the embedded ``ingestd serve``).
    """
    settings = settings or Settings()
    app = FastAPI(
        title="ingestd",
        version="0.1.0",
        summary="Durable background jobs for slow AI work behind a fast HTTP API",
        lifespan=_lifespan(settings, store, pipelines, run_worker),
        docs_url=None,  # docs.install serves /docs and /redoc from local files, not a CDN
        redoc_url=None,
        responses={
            "default": {
                "description": "An RFC 9457 problem",
                "content": {problems.PROBLEM_JSON: {"schema": schemas.ProblemOut.model_json_schema()}},
            }
        },
    )
    app.state.settings = settings
    app.state.key_cache = auth.KeyCache()
    app.state.estimator = views.Estimator()
    app.state.queue_cap = pipeline_routes.QueueCap()
    app.state.worker = None
    problems.install(app)
    app.add_middleware(guards.RequestGuard, max_header_bytes=settings.max_header_bytes)  # outermost: first to look
    for router in (health.router, pipeline_routes.router, jobs.router, events.router, observability.router):
        app.include_router(router)
    app.include_router(admin_keys.router)
    app.include_router(retry.router)
    app.include_router(batch.router)
    app.include_router(replay.router)
    memory_router = _optional_router("ingestd.api.memory")
    if memory_router is not None:
        app.include_router(memory_router)
    docs.install(app)
    return app
