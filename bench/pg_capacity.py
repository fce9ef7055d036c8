"""What one PostgreSQL sustains: claims/s and events/s with 1..6 ``ingestd worker`` processes.

    .venv/bin/python bench/pg_capacity.py                 # workers 1,2,4,6, best of 2; ~4 minutes
    .venv/bin/python bench/pg_capacity.py --workers 1,4 --jobs 2000 --fanout-jobs 100

Two workloads, each on a fresh database, for each number of worker processes (default concurrency, 16 jobs
each; the best of ``--repeat`` runs):

* **claims**: ``--jobs`` no-op jobs queued at once; every job is one claim and one finish (two transactions,
  three events: queued, started, finished). claims/s = jobs / (last finished_at - first started_at).
* **events**: ``--fanout-jobs`` jobs of a bench pipeline mapping over ``--items`` no-op items; each item is a
  checkpointed step (a ``step.started`` event, then the checkpoint and its ``step.finished`` event in one
  transaction), plus throttled ``job.progress`` events. events/s = events written / the same span.

Each worker process holds up to 10 pooled connections plus one for LISTEN: 8 processes need 88 of the default
``max_connections = 100`` (asyncpg.TooManyConnectionsError once anything else is connected), hence 1..6 here.

Alongside: PostgreSQL's commits/s (``pg_stat_database.xact_commit``: read-only transactions too) and the CPU
the database server and the workers used over the run, in cores (from /proc: both run on this machine), which
says which side saturates, and per job. PostgreSQL as configured (fsync and synchronous_commit on). On a shared
machine the numbers are noisy: the database server, the workers and anything else running share the same cores.
Results also go to bench/out/pg_capacity.json. Reuses ``bulk_queue``, ``sql`` and ``wait_drained``
from bench/engine.py, ``fresh_database`` from bench/common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
from common import fresh_database
from engine import POSTGRES, bulk_queue, sql, wait_drained
from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TICKS = os.sysconf("SC_CLK_TCK")


# --- the bench's fan-out pipeline: bulk-queued with input {}, so its defaults are the workload ------------------
class FanoutInput(BaseModel):
    items: int = int(os.environ.get("BENCH_FANOUT_ITEMS", "20"))


async def run_fanout(ctx: Context, inp: FanoutInput) -> JSON:
    async def nothing(index: int, _item: int) -> int:
        return index

    done = await ctx.map("item", list(range(inp.items)), nothing, concurrency=8)
    return {"items": len(done.ok)}


PIPELINES = [Pipeline(name="fanout", input_model=FanoutInput, run=run_fanout, description="bench: no-op steps")]


# --- CPU accounting from /proc ----------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU (user + system) of ``pid``, plus its reaped children's when asked; 0 when it is gone."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICKS


def postgres_cpu() -> float:
    """CPU used so far by the PostgreSQL server: live processes, plus the backends the postmaster reaped."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            parent = int(_stat(int(entry))[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # the postmaster's cutime holds the CPU of backends that already exited
        total += cpu_seconds(int(entry), children=parent == 1 or not _is_postgres(parent))
    return total


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except FileNotFoundError:
        return False


# --- worker processes -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def workers(url: str, n: int, pipeline: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` ``ingestd worker`` processes running only ``pipeline`` (this module's pipelines registered)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env["INGESTD_PIPELINE_MODULES"] = json.dumps(["pg_capacity:PIPELINES"])
    env["INGESTD_LOG_LEVEL"] = "WARNING"
    env["INGESTD_POLL_SECONDS"] = "0.2"  # bulk-queued jobs send no wake-up: pick them up soon
    args = [sys.executable, "-m", "ingestd.cli", "worker", "--database", url, "--pipeline", pipeline]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_connected(url: str, n: int, timeout: float = 60.0) -> None:
    """Until ``n`` worker processes heartbeat (they have imported everything and connected)."""
    deadline = time.monotonic() + timeout
    while (await sql(url, "SELECT count(*) FROM workers"))[0][0] < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} workers registered after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def commits(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(value)
    finally:
        await conn.close()


# --- one run ----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    workload: str
    workers: int
    jobs: int
    seconds: float
    jobs_per_s: float
    events_per_s: float
    commits_per_s: float
    pg_cores: float  # CPU used over the run / its wall time
    worker_cores: float
    pg_ms_per_job: float  # CPU used over the run / jobs
    worker_ms_per_job: float


async def one_run(workload: str, n_workers: int, jobs: int) -> Run:
    pipeline = "noop" if workload == "claims" else "fanout"
    async with fresh_database(POSTGRES, "engine") as url:
        with workers(url, n_workers, pipeline) as procs:
            await wait_connected(url, n_workers)
            pg0, wk0, c0, t0 = postgres_cpu(), sum(cpu_seconds(p.pid) for p in procs), await commits(url), time.time()
            await bulk_queue(url, jobs, pipeline)
            await wait_drained(url, timeout=max(300.0, jobs / 20))
            wall = time.time() - t0
            pg1, wk1, c1 = postgres_cpu(), sum(cpu_seconds(p.pid) for p in procs), await commits(url)
        [(done, first, last)] = await sql(
            url, "SELECT count(*), min(started_at), max(finished_at) FROM jobs WHERE status = 'succeeded'"
        )
        if done != jobs:
            raise RuntimeError(f"{jobs - done} of {jobs} {pipeline} jobs did not succeed")
        [(events,)] = await sql(url, "SELECT count(*) FROM events WHERE type <> 'job.queued'")
    span = float(last - first)
    return Run(
        workload,
        n_workers,
        jobs,
        round(span, 3),
        round(jobs / span, 1),
        round(events / span, 1),
        round((c1 - c0) / wall, 1),
        round((pg1 - pg0) / wall, 2),
        round((wk1 - wk0) / wall, 2),
        round(1000 * (pg1 - pg0) / jobs, 3),
        round(1000 * (wk1 - wk0) / jobs, 3),
    )


def print_table(runs: Sequence[Run]) -> None:
    """The runs, with the CPU each job cost the database and the workers (ms of CPU per job)."""
    print(f"\n{'workload':<8} {'workers':>7} {'jobs':>6} {'seconds':>8} {'jobs/s':>8} {'events/s':>9} "
          f"{'commits/s':>9} {'pg cores':>8} {'wk cores':>8} {'pg ms/job':>9} {'wk ms/job':>9}")  # fmt: skip
    for r in runs:
        pg_ms, wk_ms = r.pg_ms_per_job, r.worker_ms_per_job
        print(f"{r.workload:<8} {r.workers:>7} {r.jobs:>6} {r.seconds:>8.2f} {r.jobs_per_s:>8.1f} "
              f"{r.events_per_s:>9.1f} {r.commits_per_s:>9.1f} {r.pg_cores:>8.2f} {r.worker_cores:>8.2f} "
              f"{pg_ms:>9.2f} {wk_ms:>9.2f}")  # fmt: skip
    print(f"(machine: {os.cpu_count()} cores shared by PostgreSQL, the workers and everything else running)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,4,6", help="comma-separated worker process counts")
    ap.add_argument("--jobs", type=int, default=20000, help="no-op jobs per claims run")
    ap.add_argument("--fanout-jobs", type=int, default=400, help="fan-out jobs per events run")
    ap.add_argument("--items", type=int, default=20, help="no-op items per fan-out job")
    ap.add_argument("--workloads", default="claims,events", help="comma-separated: claims, events")
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration (best kept)")
    return ap.parse_args(argv)


async def attempt(workload: str, n: int, jobs: int, i: int) -> Run | None:
    """One run, printed; a run that fails (too many connections, say) is reported and skipped."""
    try:
        run = await one_run(workload, n, jobs)
    except (RuntimeError, TimeoutError, OSError, asyncpg.PostgresError) as exc:
        print(f"  {workload} x {n} workers (run {i}): FAILED: {type(exc).__name__}: {exc}", flush=True)
        return None
    print(f"  {workload} x {n} workers (run {i}): {run.jobs_per_s} jobs/s, {run.events_per_s} events/s", flush=True)
    return run


async def main(argv: Sequence[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    os.environ["BENCH_FANOUT_ITEMS"] = str(args.items)  # the worker processes' FanoutInput default
    runs: list[Run] = []
    for workload in args.workloads.split(","):
        for n in (int(w) for w in args.workers.split(",")):
            jobs = args.jobs if workload == "claims" else args.fanout_jobs
            tries = [run for i in range(args.repeat) if (run := await attempt(workload, n, jobs, i + 1))]
            if tries:
                runs.append(max(tries, key=lambda r: r.jobs_per_s))
    print_table(runs)
    OUT.mkdir(exist_ok=True)
    body: dict[str, Any] = {"args": vars(args), "runs": [asdict(r) for r in runs], "at": time.time()}
    (OUT / "pg_capacity.json").write_text(json.dumps(body, indent=2))
    return runs


if __name__ == "__main__":
    asyncio.run(main())
