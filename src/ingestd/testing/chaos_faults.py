"""Faults between hosts, not only crashes: the API, two workers and PostgreSQL each on a host of a ``NetLab``
(network namespaces on a bridge), jobs flowing, and one fault while they run:

* ``partition``: every packet between worker ``w1`` and the database host dropped for N seconds, then healed. The
  cut-off worker's leases run out, ``w2`` resumes its jobs; when the link heals, ``w1``'s stalled writes reach
  the server and the fence (lease owner AND attempt) refuses them.
* ``outage``: the database server stops at once (immediate shutdown) for N seconds, then starts again.
* ``transient``: for N seconds, a trigger fails a share of the step checkpoints with SQLSTATE 40001.
* ``lossy``: N seconds of 30 % packet loss between ``w1`` and the database.

What is counted (``chaos_tally.Report``): jobs lost, finished steps run twice (a provider call for a step after
its checkpoint committed), stale writes refused (the workers' ``stale write refused`` log lines) and accepted (a
step event of an earlier execution after a later one started: ``job_attempt`` below the job's attempt), and the
resume wait of each job the fault hit: from the cut (partition) or the end of the fault (outage, loss) until
another execution started it or it went on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ingestd.api.auth import create_key
from ingestd.models import JobFilter, JobStatus
from ingestd.sim.testing import running_simulator
from ingestd.store import open_store
from ingestd.store.protocol import JobStore
from ingestd.testing.chaos import Client, job_inputs, record_calls
from ingestd.testing.chaos_tally import Report, drain_and_tally, tally_steps
from ingestd.testing.netlab import Host, NetLab, python
from ingestd.testing.processes import bench_env
from ingestd.testing.sim_pipelines import SEGMENT_ROUTES

# A trigger that fails a share of step checkpoints with a serialization failure (transient: retried by the job).
TRANSIENT_ON = """
CREATE OR REPLACE FUNCTION chaos_transient() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF random() < {rate} THEN
        RAISE EXCEPTION 'chaos: injected serialization failure' USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER chaos_transient BEFORE INSERT ON steps FOR EACH ROW EXECUTE FUNCTION chaos_transient();
"""
TRANSIENT_OFF = "DROP TRIGGER IF EXISTS chaos_transient ON steps"


@dataclass
class FaultOptions:
    """One fault run."""

    schedule: str = "partition"  # partition | outage | transient | lossy, or several: "partition,outage"
    seconds: float | str = 8.0  # how long each fault lasts (or one per fault: "6,3")
    before: float = 4.0  # seconds of traffic before the fault
    after: float = 4.0  # seconds of traffic after it heals
    submit_every: float = 0.3
    time_scale: float = 0.05
    transient_rate: float = 0.2
    settings: dict[str, Any] = field(default_factory=dict)  # INGESTD_* for api and workers
    drain_seconds: float = 120.0
    seed: int = 1


async def run_fault(options: FaultOptions, log_dir: Path) -> Report:
    """One run; the lab, its processes and its database are gone when it returns."""
    faults = list(zip(options.schedule.split(","), _durations(options), strict=True))
    report = Report("postgres · " + " + ".join(f"{name} {seconds:g} s" for name, seconds in faults))
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)  # "failed to restore the pool" while it is down
    routes = {**SEGMENT_ROUTES}
    sim_config = {"time_scale": options.time_scale, "seed": options.seed, "routes": routes}
    with NetLab() as lab, running_simulator(sim_config) as sim:
        calls = record_calls(sim)
        db, api, w1, w2 = (lab.host(name) for name in ("db", "api", "w1", "w2"))
        pg = await asyncio.to_thread(lab.postgres, db)
        setup = await open_store(pg.url)  # migrated before anyone starts
        secret = await create_key(setup, "chaos")  # the API listens on a lab address: keys required
        await setup.close()
        port = int(str(sim).rsplit(":", 1)[1])
        env = bench_env(f"http://{lab.forward(port)}", worker_concurrency=8, **options.settings)
        spawn = lab.spawn
        spawn(api, [*python(), "api", "--host", api.address, "--port", "8000", "--database", pg.url], env,
              log_dir / "api.log")  # fmt: skip
        for host, name in ((w1, "w1"), (w2, "w2")):
            spawn(host, [*python(), "worker", "--database", pg.url, "--worker-id", name], env, log_dir / f"{name}.log")
        url = f"http://{api.address}:8000"
        await _healthy(url)
        started = time.monotonic()
        store = await open_store(pg.url, migrate=False)
        client = Client(url, report)
        client.http.headers["Authorization"] = f"Bearer {secret}"
        try:
            stop = asyncio.Event()
            stream = asyncio.create_task(_stream(client, options, stop))
            hit = []
            for name, seconds in faults:
                hit += await _fault(lab, options, name, seconds, pg, (db, w1), store, report)
            await asyncio.sleep(options.after)
            stop.set()
            await stream
            await drain_and_tally(store, client.accepted, options.drain_seconds, report)
            await _tally_resumes(store, hit, report)
            report.stale_refused = await _late_writes(log_dir, options, hit)
            report.leases_lost_seen = leases_lost_seen(log_dir)
            report.seconds = time.monotonic() - started
            await tally_steps(store, list(calls), report)
        finally:
            await client.http.aclose()
            await store.close()
    return report


async def _healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API at {url} did not start")
            await asyncio.sleep(0.1)


async def _stream(client: Client, options: FaultOptions, stop: asyncio.Event) -> None:
    """The mix of ``chaos.job_inputs`` without ordering keys, one job every ``submit_every`` seconds."""
    rng = random.Random(options.seed)
    tasks: set[asyncio.Task[str | None]] = set()
    n = 0
    while not stop.is_set():
        pipeline, inp, _ = job_inputs(rng, options.time_scale)
        task = asyncio.create_task(client.submit(pipeline, inp, f"fault-{options.seed}-{n}"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        await asyncio.sleep(options.submit_every)
    await asyncio.gather(*tasks)


async def _running(store: JobStore, worker: str | None = None) -> list[str]:
    page = await store.list_jobs(JobFilter(status=JobStatus.RUNNING), limit=1000)
    return [j.id for j in page.jobs if worker is None or j.lease_owner == worker]


def _durations(options: FaultOptions) -> list[float]:
    names = options.schedule.split(",")
    given = [float(x) for x in str(options.seconds).split(",")]
    return given if len(given) == len(names) else given[:1] * len(names)


async def _fault(
    lab: NetLab,
    options: FaultOptions,
    schedule: str,
    seconds: float,
    pg: Any,
    hosts: tuple[Host, Host],
    store: JobStore,
    report: Report,
) -> list[tuple[float, str, tuple[str, ...]]]:
    """Apply one fault; returns (from when, job, the events that count as resumed) for every job it hit."""
    db, w1 = hosts
    await asyncio.sleep(options.before)
    if schedule == "partition":
        for _ in range(100):  # cut while w1 holds running jobs
            held = await _running(store, "w1")
            if held:
                break
            await asyncio.sleep(0.1)
        lab.cut(w1, db)
        at = time.time()
        await asyncio.sleep(seconds)
        lab.heal(w1)
        return [(at, job_id, ("job.started", "job.finished")) for job_id in held]
    if schedule == "lossy":
        held = await _running(store)
        lab.lossy(w1, db, 30)
        await asyncio.sleep(seconds)
        lab.heal(w1)
        return [(time.time(), job_id, ()) for job_id in held]
    if schedule == "outage":
        held = await _running(store)
        await asyncio.to_thread(pg.crash)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(pg.start)
        return [(time.time(), job_id, ()) for job_id in held]
    if schedule == "transient":
        conn = await asyncpg.connect(pg.url)
        try:
            await conn.execute(TRANSIENT_ON.format(rate=options.transient_rate))
            await asyncio.sleep(seconds)
            report.transient_errors = await _count_step_retries(conn)
            await conn.execute(TRANSIENT_OFF)
        finally:
            await conn.close()
        return []
    raise ValueError(f"unknown schedule {schedule!r}")


async def _count_step_retries(conn: asyncpg.Connection) -> int:
    """Job executions put back by a store error (a ``job.queued`` event carrying a retry_at)."""
    value = await conn.fetchval("SELECT count(*) FROM events WHERE type = 'job.queued' AND data LIKE '%retry_at%'")
    return int(value)


async def _tally_resumes(store: JobStore, hit: list[tuple[float, str, tuple[str, ...]]], report: Report) -> None:
    """Seconds from ``at`` until the job's next counting event (any event when none is named)."""
    for at, job_id, kinds in hit:
        after = [
            e.at.timestamp()
            for e in await store.read_events(job_id)
            if e.at.timestamp() > at and (not kinds or e.type in kinds)
        ]
        if after:
            report.resume_waits.append(min(after) - at)
        else:
            job = await store.get_job(job_id)
            if job is None or not job.terminal:
                report.never_resumed.append(job_id)


async def _late_writes(log_dir: Path, options: FaultOptions, hit: list[tuple[float, str, tuple[str, ...]]]) -> int:
    """The stale writes refused, once the cut-off worker's stalled statements had time to arrive: TCP retransmits
    with a doubling backoff, so after a long cut the next try may come 30 s after the heal."""
    deadline = time.monotonic() + (60.0 if "partition" in options.schedule and hit else 2.0)
    while (refused := stale_refused(log_dir)) + leases_lost_seen(log_dir) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    return refused


def leases_lost_seen(log_dir: Path) -> int:
    """Jobs a worker dropped on learning (from a heartbeat) that its lease was gone."""
    return len(
        {
            line.split("job ", 1)[1].split(":", 1)[0]
            for path in log_dir.glob("w*.log")
            for line in path.read_text(errors="replace").splitlines()
            if "lease lost; dropping it" in line
        }
    )


def stale_refused(log_dir: Path) -> int:
    """Writes the fence refused, as the workers logged them."""
    return sum(path.read_text(errors="replace").count("stale write refused") for path in log_dir.glob("w*.log"))
