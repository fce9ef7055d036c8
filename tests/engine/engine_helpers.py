"""Engine test helpers: the engine's test pipelines on top of the shared support in ``tests/workers.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import workers
from workers import wait_finished, wait_until

from ingestd.models import Event, Job, NewJob
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

__all__ = ["WorkerProcess", "events_of", "fast_settings", "running_worker", "submit", "wait_finished", "wait_until"]

ENGINE_TESTS = Path(__file__).parent
FAST = {**workers.FAST_WORKER, "pipeline_modules": ["engine_pipelines:PIPELINES"]}


def fast_settings(url: str, **overrides: Any) -> Settings:
    return workers.fast_settings(url, **{**FAST, **overrides})


@asynccontextmanager
async def running_worker(store: JobStore, worker_id: str | None = None, **overrides: Any) -> AsyncIterator[Worker]:
    async with workers.running_worker(store, fast_settings(store.url, **overrides), worker_id=worker_id) as worker:
        yield worker


async def submit(store: JobStore, pipeline: str, inp: dict[str, Any], **fields: Any) -> Job:
    return (await store.submit(NewJob(pipeline=pipeline, input=inp, **fields))).job


async def events_of(store: JobStore, job_id: str) -> list[Event]:
    return await store.read_events(job_id)


class WorkerProcess(workers.WorkerProcess):
    """``ingestd worker`` with the fast settings, ``settings`` on top, and the engine's test pipelines importable."""

    def __init__(self, url: str, log_dir: Path, name: str, **settings: Any) -> None:
        super().__init__(url, log_dir, name, workers.ingestd_env({**FAST, **settings}, ENGINE_TESTS))
