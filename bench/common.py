"""Helpers shared by the bench scripts: fresh databases, free ports, the provider simulator as a process,
percentiles. The scripts run as ``.venv/bin/python bench/X.py``, so ``bench/`` is on ``sys.path``."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from ingestd.testing import processes
from ingestd.testing.processes import free_port

__all__ = ["PG_ADMIN", "free_port", "fresh_database", "median_p99", "percentile", "simulator_process", "stop_process"]

PG_ADMIN = processes.PG_ADMIN  # a script may point it at another server (bench/recall.py)


def fresh_database(backend: str, label: str, *, migrate: bool = True) -> contextlib.AbstractAsyncContextManager[str]:
    """``ingestd.testing.processes.fresh_database`` on the server of ``PG_ADMIN`` (read at each call)."""
    return processes.fresh_database(backend, label, migrate=migrate, admin_url=PG_ADMIN)


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
