"""ingestd against the job queues a team would otherwise pick: arq, procrastinate and Celery, in one run.

    .venv/bin/python bench/peers.py [--jobs 5000] [--latency-jobs 200] [--rate 50]

The peers are installed into their own environment, bench/.peers (never into ingestd's). Every system runs the
same no-op workload with ONE worker process at concurrency 10:

* throughput: N jobs enqueued first, then a worker drains them; jobs/s between the first and the last job start;
* latency: jobs enqueued at a low rate; enqueue→start p50/p99 from the enqueue time carried in each job.

Durability, stated: Redis (arq, Celery) is a private redis-server started here with AOF (appendfsync everysec);
PostgreSQL (procrastinate, ingestd) runs with fsync=on, synchronous_commit=on; ingestd on SQLite uses WAL with
synchronous=NORMAL (a committed job survives a crash of the process, not of the machine's power).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import ingestd_side

HERE = Path(__file__).resolve().parent
PEERS_ENV = HERE / ".peers"
PEERS_PY = PEERS_ENV / "bin" / "python"
PEER_PACKAGES = ["arq==0.28.0", "procrastinate==3.10.0", "celery==5.7.0", "redis==5.3.1", "psycopg[binary]==3.3.9"]
REDIS_PORT = 6390
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PROCRASTINATE_DB = "bench_procrastinate"


def ensure_peers_env() -> None:
    if PEERS_PY.exists():
        return
    print("installing arq, procrastinate and Celery into bench/.peers ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_ENV)], check=True)
    subprocess.run([str(PEERS_PY), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)


@contextlib.contextmanager
def aof_redis() -> Iterator[None]:
    """A private Redis with the append-only file on, so the peers on Redis are durable too."""
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    args = ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", folder]
    args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True).stdout.strip():
                break
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def redis_cmd(*args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True).stdout.strip()


def peer(name: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL, "BENCH_PROCRASTINATE_URL": procrastinate_url()}
    return subprocess.Popen([str(PEERS_PY), str(HERE / "peer_drivers.py"), name, *args], env=env, cwd=HERE)


def procrastinate_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PROCRASTINATE_DB


def reset_peer_state(name: str) -> None:
    redis_cmd("FLUSHALL")
    if name == "procrastinate":
        psql = ["psql", PG_ADMIN, "-q", "-c"]
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {PROCRASTINATE_DB} WITH (FORCE)"], check=True)
        subprocess.run([*psql, f"CREATE DATABASE {PROCRASTINATE_DB}"], check=True)
        subprocess.run(
            [str(PEERS_PY), str(HERE / "peer_drivers.py"), name, "enqueue", "0"],
            env={**os.environ, "BENCH_APPLY_SCHEMA": "1", "BENCH_PROCRASTINATE_URL": procrastinate_url()},
            check=True,
            cwd=HERE,
        )


def wait_done(n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(redis_cmd("GET", "bench:done") or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {redis_cmd('GET', 'bench:done')} of {n} jobs ran in {timeout:.0f} s")
        time.sleep(0.05)


def peer_throughput(name: str, n: int) -> float:
    reset_peer_state(name)
    if peer(name, "enqueue", str(n)).wait() != 0:
        raise RuntimeError(f"{name}: enqueue failed")
    worker = peer(name, "worker")
    try:
        wait_done(n, timeout=300)
    finally:
        worker.terminate()
        worker.wait()
    first, last = float(redis_cmd("GET", "bench:first")), float(redis_cmd("GET", "bench:last"))
    return (n - 1) / (last - first)


def peer_latency(name: str, n: int, rate: float) -> tuple[float, float]:
    reset_peer_state(name)
    worker = peer(name, "worker")
    try:
        time.sleep(2.0)  # let the worker connect before the first job
        if peer(name, "trickle", str(n), str(rate)).wait() != 0:
            raise RuntimeError(f"{name}: enqueue failed")
        wait_done(n, timeout=120)
    finally:
        worker.terminate()
        worker.wait()
    lat = sorted(float(x) * 1000 for x in redis_cmd("LRANGE", "bench:lat", "0", "-1").split())
    return ingestd_side.percentile(lat, 50), ingestd_side.percentile(lat, 99)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--latency-jobs", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--peers", default="arq,procrastinate,celery")
    args = ap.parse_args()
    ensure_peers_env()
    rows: list[tuple[str, str, float, float, float]] = []
    with aof_redis():
        for name in args.peers.split(","):
            tput = peer_throughput(name, args.jobs)
            p50, p99 = peer_latency(name, args.latency_jobs, args.rate)
            store = "PostgreSQL" if name == "procrastinate" else "Redis AOF"
            rows.append((name, store, tput, p50, p99))
            print(f"  {name:<14} {tput:8.0f} jobs/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms", flush=True)
    for label, url in ingestd_side.database_urls():
        tput = ingestd_side.throughput(url, args.jobs, concurrency=10)
        p50, p99 = ingestd_side.latency(url, args.latency_jobs, args.rate)
        rows.append(("ingestd", label, tput, p50, p99))
        print(f"  ingestd        {tput:8.0f} jobs/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms ({label})", flush=True)
    ingestd_side.print_table(rows)


if __name__ == "__main__":
    main()
