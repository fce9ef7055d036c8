"""Engine test helpers: fast settings, an in-process worker, worker subprocesses, waiting for a job to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ingestd.models import Event, Job, NewJob
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

ENGINE_TESTS = Path(__file__).parent
PIPELINE_MODULES = ["engine_pipelines:PIPELINES"]
FAST = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.2,
    "poll_seconds": 0.2,
    "shutdown_grace_seconds": 1.0,
    "worker_concurrency": 4,
    "pipeline_modules": PIPELINE_MODULES,
}


def fast_settings(url: str, **overrides: Any) -> Settings:
    return Settings(**{"database_url": url, **FAST, **overrides})


@asynccontextmanager
async def running_worker(store: JobStore, worker_id: str | None = None, **overrides: Any) -> AsyncIterator[Worker]:
    settings = fast_settings(store.url, **overrides)
    worker = Worker(store, build_pipelines(settings), settings, worker_id)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop(grace=0)
        await task


async def submit(store: JobStore, pipeline: str, inp: dict[str, Any], **fields: Any) -> Job:
    return (await store.submit(NewJob(pipeline=pipeline, input=inp, **fields))).job


async def wait_finished(store: JobStore, job_id: str, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = await store.get_job(job_id)
        assert job is not None
        if job.terminal:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {timeout} s"
        await asyncio.sleep(0.02)


async def wait_until(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def events_of(store: JobStore, job_id: str) -> list[Event]:
    return await store.read_events(job_id)


class WorkerProcess:
    """``ingestd worker`` as a subprocess, the way an operator runs it."""

    def __init__(self, url: str, log_dir: Path, name: str, **settings: Any) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        env = dict(os.environ)
        for key, value in {**FAST, **settings}.items():
            env[f"INGESTD_{key.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
        env["PYTHONPATH"] = os.pathsep.join([str(ENGINE_TESTS), env.get("PYTHONPATH", "")])
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingestd.cli", "worker", "--database", url, "--worker-id", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"worker {self.name} did not exit:\n{self.output()}"
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
