"""Chaos: SIGKILL workers at random instants, restart PostgreSQL, storm the API with duplicate submissions.

    .venv/bin/python bench/chaos.py [--database sqlite|postgres|both] [--kills 100] [--pg-restart] [--quick]

Per database: ``ingestd api`` and three ``ingestd worker`` processes (default lease 10 s, heartbeat 2 s) run a
steady stream of mixed jobs (``simaudio``, whose every step calls the provider simulator under the key
``<job>:<step>``; ``demo``; ``noop``), submitted over HTTP by a client that retries with an ``Idempotency-Key``.
Meanwhile a random worker is killed with SIGKILL at a random instant, ``--kills`` times, and restarted each time;
once, a storm of concurrent submissions reuses a few ``Idempotency-Key`` values (plus one conflicting payload per
key, which must get a 422); with ``--pg-restart``, PostgreSQL is restarted once mid-run (this drops every other
connection to the server: other people's tests too).

Printed per database: jobs lost (accepted with a 202 but missing or not terminal at the end), finished steps run
twice (a simulator call for a step that started after the step's checkpoint was committed), the longest time a
killed worker's job waited to be resumed, and the final statuses. Goal: 0, 0, < 15 s, all terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from services import Proc, bench_env, create_pg_database, drop_pg_database, start_server, start_worker
from sim_pipelines import SEGMENT_ROUTES
from starlette.requests import ClientDisconnect

from ingestd.models import JSON, JobFilter, JobStatus
from ingestd.sim.testing import SimulatorURL, running_simulator
from ingestd.store import open_store
from ingestd.store.protocol import JobStore

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


@dataclass
class Report:
    """What a chaos run found."""

    database: str
    kills: int = 0
    jobs_accepted: int = 0
    jobs_lost: list[str] = field(default_factory=list)
    jobs_in_store: int = 0
    finished_steps_run_twice: list[str] = field(default_factory=list)
    run_twice_details: list[JSON] = field(default_factory=list)
    provider_calls: int = 0
    provider_steps: int = 0
    provider_429s: int = 0
    resume_waits: list[float] = field(default_factory=list)
    slowest_resumes: list[dict[str, Any]] = field(default_factory=list)  # the five longest, with their events
    failures: dict[str, Any] = field(default_factory=dict)  # job id -> error, for jobs that did not succeed
    never_resumed: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    storm: dict[str, Any] = field(default_factory=dict)
    submit_failures: int = 0
    pg_restarted: bool = False
    seconds: float = 0.0
    drain_seconds: float = 0.0

    @property
    def max_resume_wait(self) -> float:
        return max(self.resume_waits, default=0.0)

    @property
    def all_terminal(self) -> bool:
        return not self.jobs_lost and not self.never_resumed


def job_inputs(rng: random.Random, scale: float) -> tuple[str, dict[str, Any]]:
    """A random job of the mix: half audio-like through the simulator, the rest demo and noop."""
    kind = rng.random()
    if kind < 0.5:
        speech = rng.uniform(20, 150)
        return "simaudio", {"megabytes": round(speech * 0.066, 1), "speech_seconds": speech, "time_scale": scale}
    if kind < 0.85:
        return "demo", {"items": rng.randint(2, 6), "seconds": rng.uniform(0.2, 0.6), "concurrency": 3}
    return "noop", {}


class Client:
    """Submits over HTTP with an ``Idempotency-Key`` per job, retrying until accepted (nothing is lost)."""

    def __init__(self, url: str, report: Report) -> None:
        self.url, self.report = url, report
        self.http = httpx.AsyncClient(timeout=30)
        self.accepted: set[str] = set()

    async def submit(self, pipeline: str, inp: dict[str, Any], key: str) -> str | None:
        for _ in range(40):  # about 20 s of retries, longer than a PostgreSQL restart
            try:
                response = await self.http.post(
                    f"{self.url}/v1/pipelines/{pipeline}/jobs", json=inp, headers={"Idempotency-Key": key}
                )
                if response.status_code in (200, 202):
                    job_id = str(response.json()["id"])
                    self.accepted.add(job_id)
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
            pipeline, inp = job_inputs(rng, options.time_scale)
            task = asyncio.create_task(self.submit(pipeline, inp, f"chaos-{options.seed}-{n}"))
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
            await asyncio.to_thread(subprocess.run, PG_RESTART, check=True)
            report.pg_restarted = True
    return orphans


async def retrying(make: Callable[[], Any], attempts: int = 30) -> Any:
    for attempt in range(attempts):
        try:
            return await make()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    return None


async def drain(store: JobStore, ids: set[str], seconds: float) -> float:
    """Wait until every accepted job is terminal (or ``seconds`` pass); returns the seconds waited."""
    started = time.monotonic()
    pending, deadline = set(ids), started + seconds
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = await retrying(functools.partial(store.get_job, job_id))
            if job is not None and job.terminal:
                pending.discard(job_id)
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def tally_jobs(store: JobStore, ids: set[str], report: Report) -> None:
    """Lost jobs, final statuses, and how many jobs the store holds in all (a duplicate submit would show)."""
    statuses: Counter[str] = Counter()
    for job_id in sorted(ids):
        job = await store.get_job(job_id)
        if job is None or not job.terminal:
            report.jobs_lost.append(job_id)
        elif job.status != JobStatus.SUCCEEDED:
            report.failures[job_id] = job.error
        statuses[job.status.value if job else "missing"] += 1
    report.statuses = dict(statuses)
    cursor, total = None, 0
    while True:
        page = await store.list_jobs(JobFilter(), limit=500, cursor=cursor)
        total += len(page.jobs)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    report.jobs_in_store = total


async def tally_steps(store: JobStore, calls: list[tuple[str, float]], report: Report) -> None:
    """A finished step ran twice when the simulator saw a call for it after its checkpoint was committed."""
    steps: dict[str, dict[str, Any]] = {}
    for key, at in calls:
        job_id, _, step_key = key.partition(":")
        if job_id not in steps:
            steps[job_id] = await store.load_steps(job_id)
        step = steps[job_id].get(step_key)
        if step is not None and at > step.finished_at.timestamp():
            report.finished_steps_run_twice.append(key)
            report.run_twice_details.append(await _run_twice_detail(store, key, step.finished_at.timestamp(), calls))
    report.provider_calls = len(calls)
    report.provider_steps = len({key for key, _ in calls})


async def _run_twice_detail(store: JobStore, key: str, checkpoint: float, calls: list[tuple[str, float]]) -> JSON:
    """What happened around a step run after its checkpoint: its calls and the job's starts, relative to it."""
    job_id = key.partition(":")[0]
    starts = [
        {"t": round(e.at.timestamp() - checkpoint, 3), "type": e.type, **e.data}
        for e in await store.read_events(job_id)
        if e.type in ("job.started", "job.released", "job.finished")
    ]
    return {"key": key, "calls": [round(at - checkpoint, 3) for k, at in calls if k == key], "job": starts}


def count_refusals(stats: dict[str, Any]) -> int:
    """Calls the simulator refused with a 429 (each one retried by the step: a repeated call, not a re-run)."""
    return sum(int(route["outcomes"].get("429", 0)) for route in stats["routes"].values())


async def tally_resumes(store: JobStore, orphans: list[tuple[float, str]], report: Report) -> None:
    """For every job a killed worker held: seconds from the kill until another worker started it (or it ended)."""
    slowest: list[tuple[float, str, float]] = []
    for killed_at, job_id in orphans:
        after = [
            e.at.timestamp()
            for e in await store.read_events(job_id)
            if e.type in ("job.started", "job.finished") and e.at.timestamp() > killed_at
        ]
        if after:
            report.resume_waits.append(min(after) - killed_at)
            slowest.append((min(after) - killed_at, job_id, killed_at))
        else:
            report.never_resumed.append(job_id)
    for wait, job_id, killed_at in sorted(slowest, reverse=True)[:5]:
        events = [
            {"t": round(e.at.timestamp() - killed_at, 2), "type": e.type, "data": e.data}
            for e in await store.read_events(job_id)
            if e.type in ("job.started", "job.released", "job.finished", "step.retrying")
        ]
        report.slowest_resumes.append({"job": job_id, "wait": round(wait, 2), "events": events})


async def run_chaos(options: Options, log_dir: Path) -> Report:
    """One chaos run on one database; the processes it starts are gone when it returns."""
    report = Report(options.database)
    # A worker killed mid-upload leaves the simulator a ClientDisconnect, which uvicorn logs as a traceback.
    logging.getLogger("uvicorn.error").addFilter(_not_a_disconnect)
    routes = {**SEGMENT_ROUTES, "chat": {"error_rates": {429: 0.02}}}
    sim_config = {"time_scale": options.time_scale, "seed": options.seed, "routes": routes}
    pg_name = f"bench_chaos_{options.seed}"
    if options.database == "postgres":
        database = await create_pg_database(pg_name)
    else:
        database = f"sqlite:///{log_dir}/chaos.db"
    try:
        with running_simulator(sim_config) as sim:
            calls = record_calls(sim)
            started = time.monotonic()
            await _run(database, sim, options, report, log_dir)
            report.seconds = time.monotonic() - started
            store = await open_store(database)
            try:
                await tally_steps(store, list(calls), report)
                report.provider_429s = count_refusals(sim.stats())
            finally:
                await store.close()
    finally:
        if options.database == "postgres":
            await drop_pg_database(pg_name)
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
    subprocess.run([*Proc.command(), "migrate", "--database", database], env=env, check=True, capture_output=True)
    api, url = await asyncio.to_thread(start_server, database, env, log_dir, with_worker=False)
    fleet = await asyncio.to_thread(Fleet, database, env, log_dir, options.workers)
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
        report.drain_seconds = await drain(store, client.accepted, options.drain_seconds)
        report.jobs_accepted = len(client.accepted)
        await tally_jobs(store, client.accepted, report)
        await tally_resumes(store, orphans, report)
    finally:
        await client.http.aclose()
        await store.close()
        fleet.stop()
        api.stop()


def table(reports: list[Report]) -> str:
    rows: list[tuple[str, Callable[[Report], str]]] = [
        ("workers killed with SIGKILL", lambda r: str(r.kills)),
        ("PostgreSQL restarted mid-run", lambda r: "yes" if r.pg_restarted else "no"),
        ("jobs accepted (202)", lambda r: str(r.jobs_accepted)),
        ("**jobs lost**", lambda r: str(len(r.jobs_lost))),
        ("jobs in the store", lambda r: str(r.jobs_in_store)),
        ("**finished steps run twice**", lambda r: str(len(r.finished_steps_run_twice))),
        ("provider calls / steps calling", lambda r: f"{r.provider_calls} / {r.provider_steps}"),
        ("  repeats: 429 retries, killed mid-step", _repeats_cell),
        ("jobs orphaned by a kill", lambda r: str(len(r.resume_waits) + len(r.never_resumed))),
        ("**longest wait to resume**", lambda r: f"{r.max_resume_wait:.1f} s"),
        ("median wait to resume", lambda r: f"{_median(r.resume_waits):.1f} s"),
        ("**final statuses**", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))),
        ("idempotency storm", _storm_cell),
        ("submits retried by the client", lambda r: str(r.submit_failures)),
        ("run time (of which draining)", lambda r: f"{r.seconds:.0f} s ({r.drain_seconds:.0f} s)"),
    ]
    head = ["", *(r.database for r in reports)]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {label} | {' | '.join(cell(r) for r in reports)} |" for label, cell in rows]
    return "\n".join(lines)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _repeats_cell(r: Report) -> str:
    killed = r.provider_calls - r.provider_steps - r.provider_429s - len(r.finished_steps_run_twice)
    return f"{r.provider_429s}, {killed}"


def _storm_cell(r: Report) -> str:
    s = r.storm
    if not s:
        return "-"
    conflicts = ", ".join(f"{v} x {k}" for k, v in s["conflicts_answered"].items())
    return f"{s['requests']} requests, {s['keys']} keys → {s['jobs_created']} jobs; other payload → {conflicts}"


def options_from(args: argparse.Namespace, database: str) -> Options:
    options = Options(database=database, kills=args.kills, pg_restart=args.pg_restart and database == "postgres")
    if args.quick:
        options.kills, options.storm_requests = min(args.kills, 20), 50
    return options


def _not_a_disconnect(record: logging.LogRecord) -> bool:
    return not (record.exc_info and record.exc_info[0] is ClientDisconnect)


async def main(args: argparse.Namespace) -> None:
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    reports = []
    for database in databases:
        with tempfile.TemporaryDirectory(prefix=f"bench-chaos-{database}-") as folder:
            logs = Path(args.logs) / database if args.logs else Path(folder)
            logs.mkdir(parents=True, exist_ok=True)
            print(f"chaos on {database}: {args.kills} kills (logs in {logs}) ...", flush=True)
            reports.append(await run_chaos(options_from(args, database), logs))
    print()
    print(table(reports))
    if args.json:
        path = Path(args.json.format(database=args.database))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{**asdict(r), "max_resume_wait": r.max_resume_wait} for r in reports], indent=1))
    goal = all(not r.jobs_lost and not r.finished_steps_run_twice and r.max_resume_wait < 15 for r in reports)
    print("\ngoal (0 lost, 0 run twice, resume < 15 s, all terminal):", "met" if goal else "NOT met")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--pg-restart", action="store_true", help="restart PostgreSQL once mid-run (disturbs others)")
    ap.add_argument("--logs", help="keep the processes' logs (and the SQLite file) in this folder")
    ap.add_argument("--quick", action="store_true", help="at most 20 kills and a smaller storm")
    ap.add_argument("--json", default="bench/out/chaos-{database}.json", help="write the results here ('' to skip)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
