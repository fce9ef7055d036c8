"""Helpers shared by the bench scripts: fresh databases, free ports, the provider simulator as a process,
percentiles. The scripts run as ``.venv/bin/python bench/X.py``, so ``bench/`` is on ``sys.path``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
import httpx

from ingestd.store import open_store

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def fresh_database(backend: str, label: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """A new, empty database of ``backend`` ("sqlite"/"SQLite", else PostgreSQL at ``PG_ADMIN``), migrated
    unless ``migrate`` is false (a server under test migrates it itself); deleted or dropped afterwards."""
    if backend.lower() == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as folder:
            url = f"sqlite:///{folder}/ingestd.db"
            if migrate:
                await (await open_store(url)).close()
            yield url
        return
    name = f"bench_{label}_{os.urandom(4).hex()}"
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        if migrate:
            await (await open_store(url)).close()
        yield url
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median_p99(samples: Sequence[float]) -> tuple[float, float]:
    """The median and the 99th percentile (the sample at index ``int(n * 0.99)``) of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator_process(config: dict[str, Any], *, quiet: bool = False) -> Iterator[str]:
    """``python -m ingestd.sim`` in its own process, as a real provider is: its CPU never competes with
    ingestd's event loop for this process's GIL. Yields its base URL once ``/healthz`` answers; ``quiet``
    also silences its stderr."""
    port = free_port()
    cmd = [sys.executable, "-m", "ingestd.sim", "--port", str(port), "--config", json.dumps(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the provider simulator did not start")
            time.sleep(0.05)
        yield url
    finally:
        stop_process(proc, timeout=10)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
