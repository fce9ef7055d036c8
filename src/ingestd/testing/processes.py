"""Processes for the chaos tests and the replay and chaos benchmarks: ``ingestd serve``/``api``/``worker``
subprocesses wired to the provider simulator and to ``sim_pipelines``, and the databases they run on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ingestd.sim.testing import provider_env
from ingestd.store import open_store

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def fresh_database(
    backend: str, label: str, *, migrate: bool = True, admin_url: str | None = None
) -> AsyncIterator[str]:
    """A new, empty database of ``backend`` ("sqlite"/"SQLite", else PostgreSQL on the server of ``admin_url``,
    by default ``PG_ADMIN``), migrated unless ``migrate`` is false (a server under test migrates it itself);
    deleted or dropped afterwards."""
    if backend.lower() == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as folder:
            url = f"sqlite:///{folder}/ingestd.db"
            if migrate:
                await (await open_store(url)).close()
            yield url
        return
    name = f"bench_{label}_{os.urandom(4).hex()}"
    admin_url = admin_url or PG_ADMIN
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        if migrate:
            await (await open_store(url)).close()
        yield url
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_env(sim_url: str, **settings: Any) -> dict[str, str]:
    """The environment of an ingestd subprocess: the simulator as every provider, ``sim_pipelines`` loaded."""
    env = dict(os.environ)
    env.update(provider_env(sim_url))
    env["INGESTD_PIPELINE_MODULES"] = json.dumps(["ingestd.testing.sim_pipelines:build"])
    env["INGESTD_LOG_LEVEL"] = "WARNING"
    for key, value in settings.items():
        env[f"INGESTD_{key.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return env


class Proc:
    """One ingestd subprocess, its output in ``log_path``."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args, self.log_path = args, log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([*self.command(), *args], env=env, stdout=log, stderr=subprocess.STDOUT)

    @staticmethod
    def command() -> list[str]:
        """The ``ingestd`` command of this interpreter."""
        return [sys.executable, "-m", "ingestd.cli"]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL and reap: the process gets no chance to clean up."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (hand running jobs over), then SIGKILL if it lingers."""
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()


def start_worker(database: str, env: dict[str, str], worker_id: str, log_dir: Path) -> Proc:
    """``ingestd worker`` with a given id."""
    return Proc(["worker", "--database", database, "--worker-id", worker_id], env, log_dir / "workers.log")


def start_server(database: str, env: dict[str, str], log_dir: Path, *, with_worker: bool) -> tuple[Proc, str]:
    """``ingestd serve`` (API + worker) or ``ingestd api`` on a free port; returns it and its base URL."""
    port = free_port()
    command = "serve" if with_worker else "api"
    proc = Proc([command, "--host", "127.0.0.1", "--port", str(port), "--database", database], env, log_dir / "api.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as client:  # one client: each httpx.get loads the CA bundle again (0.1 CPU-s)
        while True:
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            if not proc.alive or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"ingestd {command} did not start; see {proc.log_path}")
            time.sleep(0.1)
