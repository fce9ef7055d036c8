"""ingestd against the job queues a team would otherwise pick: arq, procrastinate and Celery, in one run.

    .venv/bin/python bench/peers.py [--jobs 5000] [--latency-jobs 200] [--rate 50] [--appendfsync everysec]

The peers are installed into environments of their own, bench/.peers/<peer> (never into ingestd's .venv; one
each, as arq needs redis-py < 6 and Celery's kombu >= 6.4); the first run creates them. Every system runs the
same no-op workload with ONE worker process at concurrency 10:

* throughput: N jobs enqueued first, then one worker process drains them. Peers: (N - 1) / (last start - first
  start), from start times their no-op task records in Redis; ingestd: N / (last finish - first start), from the
  database (stricter: it includes the last job's finish);
* latency: jobs enqueued one at a time at a low rate into an idle worker (one warm-up job first);
  enqueue→start p50/p99 = when the task's code started - the enqueue time taken just before enqueueing.

Durability, stated and set for the run: Redis (arq, Celery broker) at 127.0.0.1:6379, database 15, with
``appendonly yes`` and ``appendfsync everysec`` (or ``always``) set by CONFIG SET for the run and restored after;
PostgreSQL (procrastinate, ingestd) with fsync=on, synchronous_commit=on; ingestd on SQLite with WAL and
synchronous=NORMAL (a committed job survives a crash of any process, not a power cut). Peers run with their
defaults except arq's poll_delay, 0.01 s instead of 0.5 s (its default caps it at ~200 jobs/s and ~250 ms of
latency); Celery (threads pool) acknowledges a task when it starts. Results also go to
bench/out/peers.json. On a shared machine the numbers are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import engine
from common import PG_ADMIN, fresh_database, percentile, stop_process

HERE = Path(__file__).resolve().parent
PEERS_ENV = HERE / ".peers"
PEER_PACKAGES = {
    "arq": ["arq==0.28.0"],
    "celery": ["celery[redis]==5.7.0"],
    "procrastinate": ["procrastinate==3.10.0", "psycopg[binary]==3.3.9", "redis==5.3.1"],
}
REDIS_PORT, REDIS_DB = os.environ.get("BENCH_REDIS_PORT", "6379"), "15"  # a database of its own on the shared Redis
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
PROCRASTINATE_DB = "bench_procrastinate"
STORES = {"arq": "Redis (AOF)", "celery": "Redis (AOF)", "procrastinate": "PostgreSQL"}


def peer_python(name: str) -> Path:
    return PEERS_ENV / name / "bin" / "python"


def ensure_peer_env(name: str) -> None:
    """Create bench/.peers/<name> with the peer (pinned) unless it is there already."""
    if peer_python(name).exists():
        return
    print(f"installing {name} into bench/.peers/{name} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_ENV / name)], check=True)
    subprocess.run([str(peer_python(name)), "-m", "pip", "install", "-q", *PEER_PACKAGES[name]], check=True)


def redis_cmd(*args: str) -> str:
    cmd = ["redis-cli", "-p", REDIS_PORT, "-n", REDIS_DB, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def redis_durability(appendfsync: str) -> Iterator[None]:
    """AOF on (``appendonly yes``, ``appendfsync`` as asked) for the run; the previous settings restored after."""
    before = {k: redis_cmd("CONFIG", "GET", k).splitlines()[1] for k in ("appendonly", "appendfsync")}
    redis_cmd("CONFIG", "SET", "appendonly", "yes")
    redis_cmd("CONFIG", "SET", "appendfsync", appendfsync)
    try:
        yield
    finally:
        for key, value in before.items():
            redis_cmd("CONFIG", "SET", key, value)


def procrastinate_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PROCRASTINATE_DB


def peer(name: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL, "BENCH_PROCRASTINATE_URL": procrastinate_url()}
    args_ = [str(peer_python(name)), str(HERE / "peer_drivers.py"), name, *args]
    return subprocess.Popen(args_, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_peer(name: str, *args: str) -> None:
    if peer(name, *args).wait() != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed")


async def reset_peer_state(name: str) -> None:
    redis_cmd("FLUSHDB")
    if name != "procrastinate":
        return
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PROCRASTINATE_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {PROCRASTINATE_DB}")
    finally:
        await admin.close()
    run_peer(name, "schema")


async def wait_done(n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(redis_cmd("GET", "bench:done") or 0) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {redis_cmd('GET', 'bench:done')} of {n} jobs ran in {timeout:.0f} s")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def peer_worker(name: str) -> Iterator[None]:
    worker = peer(name, "worker")
    try:
        yield
    finally:
        stop_process(worker, timeout=20)


async def peer_throughput(name: str, n: int) -> float:
    await reset_peer_state(name)
    run_peer(name, "enqueue", str(n))
    with peer_worker(name):
        await wait_done(n, timeout=max(60.0, n / 50))
    first, last = float(redis_cmd("GET", "bench:first")), float(redis_cmd("GET", "bench:last"))
    return (n - 1) / (last - first)


async def peer_latency(name: str, n: int, rate: float) -> tuple[float, float]:
    await reset_peer_state(name)
    with peer_worker(name):
        run_peer(name, "trickle", "1", str(rate))  # warm-up: the worker is up and idle once it ran
        await wait_done(1, timeout=60)
        redis_cmd("DEL", "bench:done", "bench:lat", "bench:first", "bench:last")
        run_peer(name, "trickle", str(n), str(rate))
        await wait_done(n, timeout=120)
    lat = [float(x) * 1000 for x in redis_cmd("LRANGE", "bench:lat", "0", "-1").split()]
    return percentile(lat, 50), percentile(lat, 99)


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with redis_durability(args.appendfsync):
        for name in [p for p in args.peers.split(",") if p]:
            ensure_peer_env(name)
            tput = await peer_throughput(name, args.jobs)
            p50, p99 = await peer_latency(name, args.latency_jobs, args.rate)
            rows.append({"system": name, "store": STORES[name], "jobs_per_s": tput, "p50_ms": p50, "p99_ms": p99})
            print(f"  {name:<14} {tput:8,.0f} jobs/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms", flush=True)
    for backend in args.backends:
        async with fresh_database(backend, "engine") as url:
            tput, _cpu = await engine.throughput(url, args.jobs, concurrency=10)
        async with fresh_database(backend, "engine") as url:
            p50, p99 = await engine.latency(url, args.latency_jobs, args.rate)
        rows.append({"system": "ingestd", "store": backend, "jobs_per_s": tput, "p50_ms": p50, "p99_ms": p99})
        print(f"  ingestd        {tput:8,.0f} jobs/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms ({backend})", flush=True)
    return rows


def print_table(rows: list[dict[str, Any]], appendfsync: str) -> None:
    ours = {r["store"]: r for r in rows if r["system"] == "ingestd"}
    print(f"\n{'system':<14} {'store':<13} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8}", end="")
    for store in ours:
        print(f"   {f'ingestd {store}: x jobs/s':>28} {'p50 ratio':>9}", end="")
    print()
    for r in rows:
        figures = f"{r['jobs_per_s']:>8,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
        print(f"{r['system']:<14} {r['store']:<13} {figures}", end="")
        for mine in ours.values():
            print(f"   {mine['jobs_per_s'] / r['jobs_per_s']:>28.2f} {mine['p50_ms'] / r['p50_ms']:>9.2f}", end="")
        print()
    peers = [r for r in rows if r["system"] != "ingestd"]
    if peers and ours:
        best_tput = max(r["jobs_per_s"] for r in peers)
        best_p50 = min(r["p50_ms"] for r in peers)
        for store, mine in ours.items():
            need = 2.0 if store == engine.SQLITE else 1.0
            ratio = mine["jobs_per_s"] / best_tput
            print(f"ingestd {store}: {ratio:.2f} x the best peer's jobs/s (target >= {need:g}); "
                  f"p50 {mine['p50_ms']:.2f} ms vs the best peer's {best_p50:.2f} ms (target <=)")  # fmt: skip
    print(f"durability: Redis appendonly yes, appendfsync {appendfsync}; PostgreSQL fsync on, synchronous_commit on;"
          " SQLite WAL synchronous=NORMAL")  # fmt: skip


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=5000, help="no-op jobs per throughput run")
    ap.add_argument("--latency-jobs", type=int, default=200)
    ap.add_argument("--rate", type=float, default=50.0, help="enqueues per second in the latency runs")
    ap.add_argument("--peers", default="arq,procrastinate,celery")
    ap.add_argument("--backends", default="sqlite,postgres", help="ingestd's: sqlite, postgres")
    ap.add_argument("--appendfsync", default="everysec", choices=["everysec", "always"])
    args = ap.parse_args()
    wanted = {"sqlite": engine.SQLITE, "postgres": engine.POSTGRES}
    args.backends = [wanted[b.strip()] for b in args.backends.split(",") if b.strip()]
    return args


async def main() -> None:
    args = parse_args()
    rows = await measure(args)
    print_table(rows, args.appendfsync)
    engine.OUT.mkdir(exist_ok=True)
    (engine.OUT / "peers.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds, so Redis gets its settings back and the workers are stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    asyncio.run(main())
