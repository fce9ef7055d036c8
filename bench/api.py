"""The API's own numbers against a real ``ingestd api`` subprocess, on SQLite and PostgreSQL.

    .venv/bin/python bench/api.py              # 2,000 sequential + 50 clients x 40 submits, 32 MB upload
    .venv/bin/python bench/api.py --quick      # fewer submits (~30 s)
    .venv/bin/python bench/api.py --database sqlite

Printed, per backend (targets of issue 3 in brackets):

* submit latency p50/p99, sequential: one keep-alive connection sends ``POST /v1/pipelines/noop/jobs`` (a JSON
  body, a fresh ``Idempotency-Key`` each, as ``ingestd.client`` sends) and waits for the 202 before the next
  [p99 <= 5 ms SQLite, <= 10 ms PostgreSQL];
* the same with 50 concurrent clients (50 connections, each submitting in a loop): p50/p99 and submits/s;
* RSS growth of the server process while it receives one 32 MB multipart upload (peak RSS sampled every 5 ms
  during the upload minus RSS just before) [< 8 MB]: the upload streams to the blob store, never whole in memory.

Latency is measured by a minimal HTTP/1.1 client on asyncio streams (a pre-built request, the response read by
its Content-Length) so the client's own overhead stays small next to the server's; it still shares the machine's
2 cores with the server, so numbers taken while others run tests are noisy (run twice). The server runs without a
worker (``ingestd api``): the submit path alone, jobs stay queued. Results also go to bench/out/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import free_port, fresh_database, median_p99
from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
UPLOAD_BYTES = 32 * 1024 * 1024
TARGETS = {"SQLite": 5.0, "PostgreSQL": 10.0}
RSS_TARGET_MB = 8.0


# --- the bench's pipeline: takes files (the server loads it through INGESTD_PIPELINE_MODULES) --------------------
class SinkInput(BaseModel):
    model_config = {"extra": "allow"}


async def run_sink(_ctx: Context, _inp: SinkInput) -> JSON:
    return {}


PIPELINES = [Pipeline(name="upload-sink", input_model=SinkInput, run=run_sink, accepts_files=True)]


# --- the server -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def api_server(database_url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``ingestd api`` on a free port; yields (process, port) once ``/healthz`` answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env["INGESTD_PIPELINE_MODULES"] = json.dumps(["api:PIPELINES"])
    env["INGESTD_MAX_QUEUED_PER_TENANT"] = "1000000"
    args = [sys.executable, "-m", "ingestd.cli", "api", "--port", str(port), "--database", database_url]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(proc, port, log)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            if sock.recv(100).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.05)
    raise SystemExit("the server did not start")


# --- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------------------------
BODY = b'{"note": "benchmark"}'


def _submit_request() -> bytes:
    return (
        b"POST /v1/pipelines/noop/jobs HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (uuid.uuid4().hex.encode(), len(BODY), BODY)
    )


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request, read its response; the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _client(port: int, count: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            request = _submit_request()
            started = time.perf_counter()
            status = await _exchange(reader, writer, request)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 202:
                raise SystemExit(f"submit answered {status}")
    finally:
        writer.close()


async def submit_latency(port: int, clients: int, per_client: int) -> dict[str, float]:
    await _client(port, 50, [])  # warm-up: connections, caches, the first statements
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, per_client, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    p50, p99 = median_p99(latencies)
    return {
        "n": len(latencies),
        "p50_ms": p50,
        "p99_ms": p99,
        "per_second": len(latencies) / elapsed,
    }


# --- RSS during a 32 MB upload -----------------------------------------------------------------------------------
def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _multipart(size: int, boundary: bytes) -> Iterator[bytes]:
    yield b'--%s\r\nContent-Disposition: form-data; name="input"\r\n\r\n{}\r\n' % boundary
    yield b'--%s\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n' % boundary
    yield b"Content-Type: application/octet-stream\r\n\r\n"
    chunk = os.urandom(64 * 1024)
    for _ in range(size // len(chunk)):
        yield chunk
    yield b"\r\n--%s--\r\n" % boundary


def upload_rss(pid: int, port: int) -> dict[str, float]:
    """Peak RSS growth of the server while one 32 MB upload streams in."""
    boundary = uuid.uuid4().hex.encode()
    body = b"".join(_multipart(UPLOAD_BYTES, boundary))  # built first: the client's memory is not the server's
    before = _rss_kb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kb(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/pipelines/upload-sink/jobs HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n" % (boundary, len(body))
        )
        view = memoryview(body)
        for offset in range(0, len(body), 256 * 1024):
            sock.sendall(view[offset : offset + 256 * 1024])
        answer = sock.makefile("rb").read()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if not answer.startswith(b"HTTP/1.1 202"):
        raise SystemExit(f"the upload answered {answer[:300]!r}")
    return {"before_mb": before / 1024, "growth_mb": (peak - before) / 1024, "seconds": seconds}


# --- the run -----------------------------------------------------------------------------------------------------
async def bench_backend(kind: str, root: Path, quick: bool) -> dict[str, Any]:
    sequential_n = 300 if quick else 2000
    per_client = 10 if quick else 40
    async with fresh_database(kind, "api", migrate=False) as url:
        with api_server(url, root / f"api-{kind}.log") as (proc, port):
            sequential = await submit_latency(port, 1, sequential_n)
            concurrent = await submit_latency(port, 50, per_client)
            rss = upload_rss(proc.pid, port)
    return {"database": kind, "sequential": sequential, "concurrent_50": concurrent, "upload_32mb": rss}


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'database':<11} {'submits':<16} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'/s':>7}  target (p99)")
    for r in results:
        for label, key, target in [
            ("sequential", "sequential", f"<= {TARGETS[r['database']]:g} ms"),
            ("50 concurrent", "concurrent_50", ""),
        ]:
            m = r[key]
            ok = "" if not target else (" ok" if m["p99_ms"] <= TARGETS[r["database"]] else " MISSED")
            print(
                f"{r['database']:<11} {label:<16} {m['n']:>6} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} "
                f"{m['per_second']:>7.0f}  {target}{ok}"
            )
    print()
    print(f"{'database':<11} {'32 MB upload':<16} {'RSS before MB':>14} {'growth MB':>10} {'seconds':>8}  target")
    for r in results:
        u = r["upload_32mb"]
        ok = "ok" if u["growth_mb"] < RSS_TARGET_MB else "MISSED"
        print(
            f"{r['database']:<11} {'':<16} {u['before_mb']:>14.1f} {u['growth_mb']:>10.2f} {u['seconds']:>8.2f}  "
            f"< {RSS_TARGET_MB:g} MB {ok}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer submits")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    kinds = {"sqlite": ["SQLite"], "postgres": ["PostgreSQL"], "both": ["SQLite", "PostgreSQL"]}[args.database]
    results = []
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-api-") as tmp:
        for kind in kinds:
            results.append(asyncio.run(bench_backend(kind, Path(tmp), args.quick)))
    print_table(results)
    OUT.mkdir(exist_ok=True)
    (OUT / "api.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
