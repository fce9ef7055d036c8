"""The engine's own numbers, on SQLite and PostgreSQL: no-op throughput, enqueue→start latency, claim time.

    .venv/bin/python bench/engine.py            # the full run (1,000,000 queued jobs for the claim figure)
    .venv/bin/python bench/engine.py --quick    # `make bench`: the same figures with fewer jobs (~1 minute)

Printed, per backend (targets of issue 2 on a 2-core machine in brackets):

* no-op jobs/s with one worker process (``ingestd worker``, default concurrency): n jobs queued first, then
  n / (last finished_at - first started_at) from the database [>= 4,000 SQLite, >= 2,000 PostgreSQL];
* enqueue→start p50/p99: jobs submitted one at a time at a low rate, latency = when the pipeline's code started
  (stamped in its result) - just before ``submit`` was called; with the worker in the submitting process and in a
  separate ``ingestd worker`` process [p50 <= 1 ms in process, <= 5 ms across processes];
* claim time with 1,000 vs 1,000,000 queued jobs: p50 of ``claim_jobs(limit=1)`` [1M <= 1.5 x 1k]. The queue is
  built with one bulk ``INSERT ... SELECT`` (not through submit), then ``ANALYZE`` (PostgreSQL: ``VACUUM ANALYZE``
  and a ``CHECKPOINT``) as autovacuum and the checkpointer would.

Durability as configured by default: SQLite WAL with synchronous=NORMAL, PostgreSQL fsync=on and
synchronous_commit=on. Results also go to bench/out/engine.json. Numbers on a shared machine are noisy: run twice.
``bench/peers.py`` reuses ``throughput`` and ``latency`` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from common import fresh_database, percentile, stop_process
from pydantic import BaseModel

from ingestd.models import JSON, NewJob
from ingestd.pipeline import Context, Pipeline
from ingestd.pipelines import build_pipelines
from ingestd.settings import Settings
from ingestd.store import open_store, sqlite_path
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SQLITE, POSTGRES = "SQLite", "PostgreSQL"


# --- the bench's own pipeline: stamps when its code started ----------------------------------------------------
class StampInput(BaseModel):
    model_config = {"extra": "allow"}


async def run_stamp(_ctx: Context, _inp: StampInput) -> JSON:
    return {"t": time.time()}


PIPELINES = [Pipeline(name="stamp", input_model=StampInput, run=run_stamp, description="bench: start time")]


# --- databases --------------------------------------------------------------------------------------------------
def postgres_available() -> bool:
    try:
        import ingestd.store.postgres  # noqa: F401
    except ImportError:
        return False
    return True


_COLUMNS = (
    "id, tenant, pipeline, status, input, files, attempt, max_attempts, priority, run_at, created_at, updated_at, "
    "cancel_requested, retention_seconds, usage, units, last_seq"
)


async def bulk_queue(url: str, n: int, pipeline: str = "noop") -> None:
    """Queue ``n`` jobs with their ``job.queued`` events in two set-based statements (no per-job round trip)."""
    if url.startswith("sqlite"):
        await asyncio.to_thread(_bulk_queue_sqlite, sqlite_path(url), n, pipeline)
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"INSERT INTO jobs ({_COLUMNS}) SELECT 'bench' || lpad(i::text, 21, '0'), 'default', $1, 'queued', "
            "'{}', '[]', 0, 5, 0, now(), now(), now(), false, 604800, '{}', 1, 1 FROM generate_series(1, $2) AS i",
            pipeline,
            n,
        )
        await conn.execute(
            "INSERT INTO events (job_id, seq, type, data, at) SELECT id, 1, 'job.queued', '{}', created_at FROM jobs "
            "WHERE id LIKE 'bench%'"
        )
        # What autovacuum would do next, done now so it does not compete with the claims being timed; then the
        # bulk load's writeback, which is not what is measured either.
        await conn.execute("VACUUM ANALYZE jobs")
        await conn.execute("VACUUM ANALYZE events")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def _bulk_queue_sqlite(path: str, n: int, pipeline: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            f"INSERT INTO jobs ({_COLUMNS}) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < ?) SELECT printf('bench%021d', i), 'default', ?, 'queued', '{}', '[]', 0, 5, 0, ?, ?, ?, 0, "
            "604800, '{}', 1, 1 FROM n",
            (n, pipeline, now, now, now),
        )
        conn.execute(
            "INSERT INTO events (job_id, seq, type, data, at) SELECT id, 1, 'job.queued', '{}', created_at FROM jobs "
            "WHERE id LIKE 'bench%'"
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def sql(url: str, query: str) -> list[Any]:
    """One read query, for the bench's own bookkeeping (times as Unix seconds on both backends)."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as conn:
            return conn.execute(query).fetchall()
    query = query.replace("started_at", "extract(epoch from started_at)::float8")
    query = query.replace("finished_at", "extract(epoch from finished_at)::float8")
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


# --- worker processes -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def worker_process(url: str, pipeline: str, concurrency: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``ingestd worker`` in its own process, running only ``pipeline`` (the bench's ``stamp`` one included)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env["INGESTD_PIPELINE_MODULES"] = json.dumps(["engine:PIPELINES"])
    env["INGESTD_LOG_LEVEL"] = "WARNING"
    args = [sys.executable, "-m", "ingestd.cli", "worker", "--database", url, "--pipeline", pipeline]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop_process(proc, timeout=30)


async def wait_drained(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (await sql(url, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"))[0][0]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still queued after {timeout:.0f} s")
        await asyncio.sleep(0.1)


# --- the figures ------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(url: str, n: int, concurrency: int | None = None) -> tuple[float, float]:
    """One worker process draining ``n`` queued no-op jobs: (jobs/s from first start to last finish, the worker's
    CPU microseconds per job). The CPU figure holds on a busy machine, where the wall clock depends on the others."""
    with worker_process(url, "noop", concurrency) as proc:
        store = await open_store(url, migrate=False)
        try:
            await store.submit(NewJob(pipeline="noop", input={}))  # warm-up: the worker is up once it ran
            await wait_drained(url, timeout=60)
        finally:
            await store.close()
        cpu = cpu_seconds(proc.pid)
        await bulk_queue(url, n)
        await wait_drained(url, timeout=max(120.0, n / 200))
        cpu = cpu_seconds(proc.pid) - cpu
    [(done, first, last)] = await sql(
        url,
        "SELECT count(*), min(started_at), max(finished_at) FROM jobs WHERE status = 'succeeded' AND id LIKE 'bench%'",
    )
    if done != n:
        raise RuntimeError(f"{n - done} of {n} jobs did not succeed")
    return float(n / (last - first)), cpu / n * 1e6


async def _trickle(store: JobStore, n: int, rate: float) -> list[float]:
    """Submit ``n`` stamp jobs at ``rate``/s, one at a time; enqueue→start of each, in milliseconds.

    One job first, waited for: the worker is then up (imports, connections, wake-up sockets) and idle."""
    await store.submit(NewJob(pipeline="stamp", input={}))
    await wait_drained(store.url, timeout=60)
    submitted: list[tuple[str, float]] = []
    for _ in range(n):
        before = time.time()
        outcome = await store.submit(NewJob(pipeline="stamp", input={}))
        submitted.append((outcome.job.id, before))
        await asyncio.sleep(1 / rate)
    await wait_drained(store.url, timeout=60)
    latencies = []
    for job_id, before in submitted:
        job = await store.get_job(job_id)
        assert job is not None and job.result is not None, job
        latencies.append((job.result["t"] - before) * 1000)
    return latencies


async def latency(url: str, n: int, rate: float, *, in_process: bool = False) -> tuple[float, float]:
    """Enqueue→start p50 and p99 (ms) with a worker in this process (sharing the submitter's store, as
    ``ingestd serve`` runs them) or in a separate ``ingestd worker`` process."""
    store = await open_store(url, migrate=False)
    try:
        if not in_process:
            with worker_process(url, "stamp"):
                lat = await _trickle(store, n, rate)
            return percentile(lat, 50), percentile(lat, 99)
        settings = Settings(database_url=url, pipelines=["stamp"])
        worker = Worker(store, {**build_pipelines(settings), "stamp": PIPELINES[0]}, settings)
        task = asyncio.create_task(worker.run())
        try:
            lat = await _trickle(store, n, rate)
        finally:
            await worker.stop(grace=0)
            await task
        return percentile(lat, 50), percentile(lat, 99)
    finally:
        await store.close()


async def claim_time(url: str, queued: int, claims: int) -> float:
    """p50 of ``claim_jobs(limit=1)`` (ms) with ``queued`` jobs in the queue."""
    await bulk_queue(url, queued)
    store = await open_store(url, migrate=False)
    try:
        times = []
        for _ in range(claims):
            started = time.perf_counter()
            got = await store.claim_jobs("bench", pipelines=["noop"], limit=1, lease_seconds=60)
            times.append((time.perf_counter() - started) * 1000)
            assert len(got) == 1
        return statistics.median(times[claims // 10 :])
    finally:
        await store.close()


# --- the run ----------------------------------------------------------------------------------------------------
async def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"backend": backend}
    for attempt in range(args.repeat):
        async with fresh_database(backend, "engine") as url:
            tput, cpu = await throughput(url, args.jobs)
        row.setdefault("jobs_per_s", []).append(tput)
        row.setdefault("worker_cpu_us_per_job", []).append(cpu)
        print(f"  {backend}: {tput:,.0f} no-op jobs/s, worker CPU {cpu:.0f} us/job (run {attempt + 1})", flush=True)
    for where, in_process in (("in_process", True), ("cross_process", False)):
        async with fresh_database(backend, "engine") as url:
            p50, p99 = await latency(url, args.latency_jobs, args.rate, in_process=in_process)
        row[f"{where}_p50_ms"], row[f"{where}_p99_ms"] = p50, p99
        print(f"  {backend}: enqueue->start {where.replace('_', ' ')} p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    for queued in (1_000, args.big):
        async with fresh_database(backend, "engine") as url:
            row[f"claim_ms_{queued}"] = await claim_time(url, queued, args.claims)
        print(f"  {backend}: claim with {queued:,} queued: {row[f'claim_ms_{queued}']:.3f} ms", flush=True)
    return row


def _runs(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in values)


def table_lines(rows: list[dict[str, Any]], big: int) -> list[tuple[str, ...]]:
    """(metric, one column per backend, target) rows of the printed table."""
    targets = {SQLITE: ">= 4,000", POSTGRES: ">= 2,000"}
    lines: list[tuple[str, ...]] = [
        ("no-op jobs/s, 1 worker process (runs)", *(_runs(r["jobs_per_s"], ",.0f") for r in rows),
         " / ".join(targets[r["backend"]] for r in rows)),
        ("worker CPU per no-op job, us (runs)", *(_runs(r["worker_cpu_us_per_job"], ".0f") for r in rows), ""),
        ("no-op jobs per worker CPU-second", *(f"{1e6 / min(r['worker_cpu_us_per_job']):,.0f}" for r in rows), ""),
        ("enqueue->start in process p50 / p99, ms",
         *(f"{r['in_process_p50_ms']:.2f} / {r['in_process_p99_ms']:.2f}" for r in rows), "p50 <= 1"),
        ("enqueue->start across processes p50 / p99, ms",
         *(f"{r['cross_process_p50_ms']:.2f} / {r['cross_process_p99_ms']:.2f}" for r in rows), "p50 <= 5"),
        ("claim with 1,000 queued, ms (p50)", *(f"{r['claim_ms_1000']:.3f}" for r in rows), ""),
        (f"claim with {big:,} queued, ms (p50)", *(f"{r[f'claim_ms_{big}']:.3f}" for r in rows), ""),
        (f"claim {big:,} / claim 1,000", *(f"{r[f'claim_ms_{big}'] / r['claim_ms_1000']:.2f}" for r in rows),
         "<= 1.5"),
    ]  # fmt: skip
    return lines


def print_table(rows: list[dict[str, Any]], big: int) -> None:
    lines = [("", *(r["backend"] for r in rows), "target"), *table_lines(rows, big)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    print()
    for line in lines:
        cells = [cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer jobs: about a minute in all")
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--jobs", type=int, help="no-op jobs per throughput run (default 20,000; quick 5,000)")
    ap.add_argument("--repeat", type=int, help="throughput runs per backend (default 2; quick 1)")
    ap.add_argument("--latency-jobs", type=int, help="jobs per latency run (default 500; quick 150)")
    ap.add_argument("--rate", type=float, default=100.0, help="submits per second in the latency runs")
    ap.add_argument("--big", type=int, help="queued jobs of the large claim run (default 1,000,000)")
    ap.add_argument("--claims", type=int, default=200, help="claims timed per queue size")
    args = ap.parse_args(argv)
    defaults = {"jobs": (20_000, 5_000), "repeat": (2, 1), "latency_jobs": (500, 150), "big": (1_000_000, 1_000_000)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


async def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    wanted = {"sqlite": SQLITE, "postgres": POSTGRES}
    backends = [wanted[b.strip()] for b in args.backends.split(",") if b.strip()]
    if POSTGRES in backends and not postgres_available():
        print("PostgreSQL: skipped (ingestd.store.postgres is not there yet)")
        backends.remove(POSTGRES)
    rows = [await measure(backend, args) for backend in backends]
    print_table(rows, args.big)
    OUT.mkdir(exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    asyncio.run(main())
