"""Test support shared by every test directory: fast worker settings, an in-process worker, ``ingestd worker``
subprocesses configured through ``INGESTD_*``, polling until something holds, free ports, waiting for a server.

``tests/`` has no ``__init__.py`` and holds ``conftest.py``, so pytest's default import mode puts it on
``sys.path``: ``from workers import ...`` works from every test directory. What is specific to one directory
(its test pipelines, closing a pipeline's providers) stays in that directory's helper module.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from ingestd.models import Job
from ingestd.pipeline import Pipeline
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

# Short leases and quick polls: a crashed worker's job is taken over in about two seconds, not minutes.
FAST_WORKER: dict[str, Any] = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.2,
    "poll_seconds": 0.2,
    "shutdown_grace_seconds": 1.0,
    "worker_concurrency": 4,
}
# The API tests (tests/integration in process, tests/acceptance as subprocesses) with their test pipelines.
FAST_API: dict[str, Any] = {
    **FAST_WORKER,
    "shutdown_grace_seconds": 0.5,
    "worker_concurrency": 8,
    "webhook_dispatch": False,
    "sse_keepalive_seconds": 0.5,
    "pipeline_modules": ["api_pipelines:PIPELINES"],
}
TERMINAL = ("succeeded", "partial", "failed", "canceled")


def fast_settings(url: str, **overrides: Any) -> Settings:
    """Settings on ``url`` with :data:`FAST_WORKER`, then ``overrides``."""
    return Settings(**{"database_url": url, **FAST_WORKER, **overrides})


@asynccontextmanager
async def running_worker(
    store: JobStore, settings: Settings, pipelines: dict[str, Pipeline] | None = None, worker_id: str | None = None
) -> AsyncIterator[Worker]:
    """A :class:`Worker` running as a task of this event loop (default: the registered pipelines), stopped after."""
    worker = Worker(store, build_pipelines(settings) if pipelines is None else pipelines, settings, worker_id)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.stop(grace=0)
        await task


async def wait_finished(store: JobStore, job_id: str, timeout: float = 30.0) -> Job:
    """Poll the store until the job is terminal; the job."""
    deadline = time.monotonic() + timeout
    while True:
        job = await store.get_job(job_id)
        assert job is not None
        if job.terminal:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {timeout} s"
        await asyncio.sleep(0.02)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition", interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it answers true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)


async def job_via_api(
    client: httpx.AsyncClient, job_id: str, timeout: float = 60.0, interval: float = 0.02, **request: Any
) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` (``request``: more arguments of ``client.get``, e.g. a long-poll ``params``)
    until the job is terminal; the job as the API shows it."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/v1/jobs/{job_id}", **request)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
        await asyncio.sleep(interval)


def ingestd_env(settings: dict[str, Any], pythonpath: Path | None = None) -> dict[str, str]:
    """This process's environment plus ``settings`` as ``INGESTD_*`` variables (lists and dicts as JSON, the way
    pydantic-settings reads them), with ``pythonpath`` first on ``PYTHONPATH`` (where test pipelines live)."""
    env = dict(os.environ)
    for key, value in settings.items():
        env[f"INGESTD_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return env


class WorkerProcess:
    """``ingestd worker`` as a subprocess, the way an operator runs it, its output in ``log_dir/name.log``."""

    def __init__(self, url: str, log_dir: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
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
        """Until the process exits; its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"worker {self.name} did not exit:\n{self.output()}"
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, timeout: float = 30.0) -> None:
        """Until the worker logged that it runs (it claims jobs from then on)."""
        deadline = time.monotonic() + timeout
        while f"worker {self.name} running" not in self.output():
            assert self.proc.poll() is None, f"worker {self.name} exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"worker {self.name} did not start:\n{self.output()}"
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        """Kill it (if still running) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Until the server at ``url`` answers ``/healthz`` with 200; fail with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    # One client for every poll: each ``httpx.get`` makes a client, whose TLS context loads the CA bundle (0.1 CPU-s
    # at load 10), which made this loop burn a core beside the server it waits for.
    with httpx.Client(timeout=1) as client:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start in {timeout} s:\n{log.read_text()}"
            time.sleep(0.05)
