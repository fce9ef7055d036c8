"""The chaos run: SIGKILL workers at random instants, restart PostgreSQL, storm the API with duplicate submissions.

Per database: ``ingestd api`` and three ``ingestd worker`` processes (default lease 10 s, heartbeat 2 s) run a
steady stream of mixed jobs (``simaudio``, whose every step calls the provider simulator under the key
``<job>:<step>``; ``demo``; ``noop``), submitted over HTTP by a client that retries with an ``Idempotency-Key``.
Meanwhile a random worker is killed with SIGKILL at a random instant, ``Options.kills`` times, and restarted each
time; once, a storm of concurrent submissions reuses a few ``Idempotency-Key`` values (plus one conflicting payload
per key, which must get a 422); with ``pg_restart``, PostgreSQL is restarted once mid-run. ``chaos_tally`` counts
what went wrong. Driven by ``tests/chaos`` (short) and ``bench/chaos.py`` (the command line, long runs).
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import ClientDisconnect

from ingestd.models import JobFilter, JobStatus
from ingestd.sim.testing import SimulatorURL, running_simulator
from ingestd.store import open_store
from ingestd.store.protocol import JobStore
from ingestd.testing.chaos_tally import (
    Report,
    count_refusals,
    drain_and_tally,
    tally_order,
    tally_resumes,
    tally_steps,
)
from ingestd.testing.processes import Proc, bench_env, fresh_database, start_server, start_worker
from ingestd.testing.sim_pipelines import SEGMENT_ROUTES

PG_RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]


@dataclass
class Options:
    """One chaos run."""

    database: str = "sqlite"  # sqlite | postgres
    kills: int = 100
    workers: int = 3
    kill_every: tuple[float, float] = (1.0, 3.0)  # seconds between kills, uniform (a worker starts in ~2 s)
    submit_every: float = 0.25  # seconds between submissions while the kills go on (below the fleet's capacity)
    storm_requests: int = 200
    storm_keys: int = 5
    pg_restart: bool = False
    time_scale: float = 0.1  # of the simulator's provider latencies
    settings: dict[str, Any] = field(default_factory=dict)  # INGESTD_* for api and workers (lease, heartbeat...)
    drain_seconds: float = 300.0  # after the last kill, how long jobs may take to finish before they count as lost
    seed: int = 1


def job_inputs(rng: random.Random, scale: float) -> tuple[str, dict[str, Any], str | None]:
    """A random job of the mix: half audio-like through the simulator, the rest demo and noop. Some demo jobs
    carry one of four ordering keys (one user's sessions, applied one at a time in submission order)."""
    kind = rng.random()
    if kind < 0.5:
        speech = rng.uniform(20, 150)
        inp = {"megabytes": round(speech * 0.066, 1), "speech_seconds": speech, "time_scale": scale}
        return "simaudio", inp, None
    if kind < 0.85:
        inp = {"items": rng.randint(2, 6), "seconds": rng.uniform(0.2, 0.6), "concurrency": 3}
        return "demo", inp, f"user-{rng.randrange(4)}" if rng.random() < 0.3 else None
    return "noop", {}, None


class Client:
    """Submits over HTTP with an ``Idempotency-Key`` per job, retrying until accepted (nothing is lost)."""

    def __init__(self, url: str, report: Report) -> None:
        self.url, self.report = url, report
        self.http = httpx.AsyncClient(timeout=30)
        self.accepted: set[str] = set()
        self.ordered: dict[str, list[str]] = {}  # ordering key -> its jobs

    async def submit(self, pipeline: str, inp: dict[str, Any], key: str, order: str | None = None) -> str | None:
        params = {"ordering_key": order} if order else {}
        for _ in range(40):  # about 20 s of retries, longer than a PostgreSQL restart
            try:
                response = await self.http.post(
                    f"{self.url}/v1/pipelines/{pipeline}/jobs",
                    json=inp,
                    params=params,
                    headers={"Idempotency-Key": key},
                )
                if response.status_code in (200, 202):
                    job_id = str(response.json()["id"])
                    self.accepted.add(job_id)
                    if order:
                        self.ordered.setdefault(order, []).append(job_id)
                    return job_id
            except httpx.TransportError:
                pass
            self.report.submit_failures += 1
            await asyncio.sleep(0.5)
        return None

    async def stream(self, options: Options, stop: asyncio.Event) -> None:
        rng = random.Random(options.seed)
        tasks: set[asyncio.Task[str | None]] = set()
        n = 0
        while not stop.is_set():
            pipeline, inp, order = job_inputs(rng, options.time_scale)
            task = asyncio.create_task(self.submit(pipeline, inp, f"chaos-{options.seed}-{n}", order))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(options.submit_every)
        await asyncio.gather(*tasks)

    async def storm(self, options: Options) -> dict[str, Any]:
        """Many concurrent submissions under a few keys, then one conflicting payload per key."""
        keys = [f"storm-{options.seed}-{k}" for k in range(options.storm_keys)]
        body = {"items": 2, "seconds": 0.2}

        async def post(key: str, inp: dict[str, Any]) -> tuple[str, int, str | None]:
            r = await self.http.post(f"{self.url}/v1/pipelines/demo/jobs", json=inp, headers={"Idempotency-Key": key})
            return key, r.status_code, r.json().get("id") if r.status_code in (200, 202) else None

        answers = await asyncio.gather(*(post(keys[i % len(keys)], body) for i in range(options.storm_requests)))
        conflicts = await asyncio.gather(*(post(key, {"items": 3}) for key in keys))
        ids = {job_id for _, _, job_id in answers if job_id}
        self.accepted |= ids
        return {
            "requests": len(answers),
            "keys": len(keys),
            "statuses": dict(Counter(str(code) for _, code, _ in answers)),
            "jobs_created": len(ids),
            "conflicts_answered": dict(Counter(str(code) for _, code, _ in conflicts)),
        }


class Fleet:
    """The worker processes: kill one, start a fresh one in its place."""

    def __init__(self, database: str, env: dict[str, str], log_dir: Path, count: int) -> None:
        self.database, self.env, self.log_dir = database, env, log_dir
        self.generation = 0
        self.procs: dict[str, Proc] = {}
        for _ in range(count):
            self.start()

    def start(self) -> None:
        self.generation += 1
        worker_id = f"chaos-w{self.generation}"
        self.procs[worker_id] = start_worker(self.database, self.env, worker_id, self.log_dir)

    def kill_one(self, rng: random.Random, live: set[str]) -> str:
        """Kill a random worker among the ``live`` ones (heartbeating: past its start-up), start another."""
        worker_id = rng.choice(sorted(set(self.procs) & live) or sorted(self.procs))
        self.procs.pop(worker_id).kill9()
        self.start()
        return worker_id

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


async def held_by(store: JobStore, worker_id: str) -> list[str]:
    """Jobs whose lease the (dead) worker holds: nobody else may take them before the lease expires."""
    for _ in range(30):
        try:
            page = await store.list_jobs(JobFilter(status=JobStatus.RUNNING), limit=1000)
            return [job.id for job in page.jobs if job.lease_owner == worker_id]
        except Exception:  # the database may be restarting; try again
            await asyncio.sleep(0.5)
    return []


async def live_workers(store: JobStore, fleet: Fleet, settings: dict[str, Any]) -> set[str]:
    """The fleet's workers that heartbeat (waiting up to 10 s for one: a worker takes a while to start)."""
    within = 2 * float(settings.get("heartbeat_seconds", 2.0))
    for _ in range(50):
        try:
            live = {str(w["id"]) for w in await store.live_workers(within)} & set(fleet.procs)
        except Exception:  # the database may be restarting
            live = set()
        if live:
            return live
        await asyncio.sleep(0.2)
    return set()


async def kill_loop(store: JobStore, fleet: Fleet, options: Options, report: Report) -> list[tuple[float, str]]:
    """Kill a random live worker ``options.kills`` times; return (kill time, job id) for every job it held."""
    rng = random.Random(options.seed + 1)
    orphans: list[tuple[float, str]] = []
    for n in range(options.kills):
        await asyncio.sleep(rng.uniform(*options.kill_every))
        live = await live_workers(store, fleet, options.settings)
        victim = await asyncio.to_thread(fleet.kill_one, rng, live)
        killed_at = time.time()
        report.kills += 1
        orphans += [(killed_at, job_id) for job_id in await held_by(store, victim)]
        if options.pg_restart and n == options.kills // 2:
            print("restarting PostgreSQL ...", flush=True)
            began = time.monotonic()
            await asyncio.to_thread(subprocess.run, PG_RESTART, check=True)
            report.pg_restarted, report.pg_restart_seconds = True, time.monotonic() - began
    return orphans


async def run_chaos(options: Options, log_dir: Path) -> Report:
    """One chaos run on one database; the processes it starts are gone when it returns."""
    report = Report(options.database)
    # A worker killed mid-upload leaves the simulator a ClientDisconnect, which uvicorn logs as a traceback.
    logging.getLogger("uvicorn.error").addFilter(_not_a_disconnect)
    routes = {**SEGMENT_ROUTES, "chat": {"error_rates": {429: 0.02}}}
    sim_config = {"time_scale": options.time_scale, "seed": options.seed, "routes": routes}
    async with fresh_database(options.database, "chaos") as database:
        with running_simulator(sim_config) as sim:
            calls = record_calls(sim)
            started = time.monotonic()
            await _run(database, sim, options, report, log_dir)
            report.seconds = time.monotonic() - started
            store = await open_store(database, migrate=False)
            try:
                await tally_steps(store, list(calls), report)
                report.provider_429s = count_refusals(sim.stats())
            finally:
                await store.close()
    return report


def record_calls(sim: SimulatorURL) -> list[tuple[str, float]]:
    """Wrap the simulator's call counter to remember when each keyed call arrived (it runs in this process)."""
    calls: list[tuple[str, float]] = []
    begin = sim.state.begin

    def counting_begin(route: str, key: str | None) -> Any:
        if key is not None:
            calls.append((key, time.time()))
        return begin(route, key)

    sim.state.begin = counting_begin  # type: ignore[method-assign]
    return calls


async def _run(database: str, sim: SimulatorURL, options: Options, report: Report, log_dir: Path) -> None:
    env = bench_env(sim, worker_concurrency=8, **options.settings)
    # The workers start while the API does (each is seconds of imports on a loaded machine), not after it.
    fleet = await asyncio.to_thread(Fleet, database, env, log_dir, options.workers)
    try:
        api, url = await asyncio.to_thread(start_server, database, env, log_dir, with_worker=False)
    except BaseException:
        fleet.stop()
        raise
    client = Client(url, report)
    store = await open_store(database, migrate=False)
    try:
        stop = asyncio.Event()
        stream = asyncio.create_task(client.stream(options, stop))
        kills = asyncio.create_task(kill_loop(store, fleet, options, report))
        await asyncio.sleep(options.kill_every[1] * options.kills / 3)
        report.storm = await client.storm(options)
        orphans = await kills
        stop.set()
        await stream
        await drain_and_tally(store, client.accepted, options.drain_seconds, report)
        await tally_resumes(store, orphans, report)
        await tally_order(store, client.ordered, report)
    finally:
        await client.http.aclose()
        await store.close()
        fleet.stop()
        api.stop()


def _not_a_disconnect(record: logging.LogRecord) -> bool:
    return not (record.exc_info and record.exc_info[0] is ClientDisconnect)
