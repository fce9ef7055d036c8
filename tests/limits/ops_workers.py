"""``ingestd worker`` subprocesses for the ops tests (limits, webhooks), configured through ``INGESTD_*``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FAST: dict[str, Any] = {
    "lease_seconds": 2.0,
    "heartbeat_seconds": 0.2,
    "poll_seconds": 0.2,
    "shutdown_grace_seconds": 1.0,
    "worker_concurrency": 4,
}


def env_of(settings: dict[str, Any], pythonpath: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in settings.items():
        env[f"INGESTD_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return env


class WorkerProcess:
    """One ``python -m ingestd.cli worker`` with its output in ``log_dir/name.log``."""

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
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
