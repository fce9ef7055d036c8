"""``ingestd serve`` / ``ingestd api`` / ``ingestd worker`` / any ``ingestd`` command as subprocesses, the way a
user runs them, with settings fast enough for tests (short leases, quick polls) and the test pipelines of
``tests/integration/api_pipelines.py`` loaded through ``INGESTD_PIPELINE_MODULES``."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from workers import FAST_API, TERMINAL, free_port, ingestd_env, wait_healthy

TESTS = Path(__file__).parent.parent


def environment(**settings: Any) -> dict[str, str]:
    env = ingestd_env({**FAST_API, **settings}, TESTS / "integration")
    env.pop("INGESTD_API_KEY", None)
    return env


def ingestd(*args: str, timeout: float = 60, **settings: Any) -> subprocess.CompletedProcess[str]:
    """Run one ``ingestd`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ingestd.cli", *args],
        env=environment(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Process:
    """One long-running ``ingestd`` command (serve, api, worker), its output in a log file."""

    def __init__(self, args: list[str], log: Path, **settings: Any) -> None:
        self.args, self.log_path, self.settings = args, log, settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingestd.cli", *self.args],
                env=environment(**self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Server(Process):
    """``ingestd serve`` (or ``api``) on a free loopback port; ``url`` is its base URL."""

    def __init__(
        self, database_url: str, log: Path, command: str = "serve", *, wait: bool = True, **settings: Any
    ) -> None:
        """Started, and answering unless ``wait`` is false (then call :meth:`wait_ready`: servers started one after
        another that way come up side by side)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([command, "--port", str(self.port), "--database", database_url], log, **settings)
        if wait:
            self.wait_ready()

    def restart(self) -> None:
        self.start()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        wait_healthy(self.url, self.proc, self.log_path, timeout)


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """Long-poll ``GET /v1/jobs/{id}?wait`` until the job is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", params={"wait": 2}).json()
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"


@dataclass
class Served:
    """A running server with API keys for tenants ``acme`` and ``globex`` (the ``served`` fixture)."""

    server: Server
    database_url: str
    keys: dict[str, str]

    def client(self, tenant: str = "acme") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


class CuttingProxy:
    """A TCP proxy in front of a server whose first connection breaks: the request reaches the server, at most
    ``answer_bytes`` of the answer come back, then the proxy hangs up (0: the answer is lost whole). Later
    connections pass through."""

    def __init__(self, upstream_port: int, answer_bytes: int = 0) -> None:
        self.upstream_port, self.answer_bytes = upstream_port, answer_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            if self.connections == 1:
                self._cut(client, upstream)
            else:
                threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _cut(self, client: socket.socket, upstream: socket.socket) -> None:
        left = self.answer_bytes
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536 if left else 1):
                client.sendall(data[:left])
                left -= min(left, len(data))
                if not left:
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump thread blocked on it, unlike close()
            sock.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
