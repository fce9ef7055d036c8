"""Chaos: SIGKILL workers at random instants, restart PostgreSQL, storm the API with duplicate submissions.

    .venv/bin/python bench/chaos.py [--database sqlite|postgres|both] [--kills 100] [--pg-restart] [--quick]
        [--faults partition:5,partition:30,outage:5,outage:20,outage:60,transient:20]

Per database: ``ingestd api`` and three ``ingestd worker`` processes (default lease 10 s, heartbeat 2 s) run a
steady stream of mixed jobs (``simaudio``, whose every step calls the provider simulator under the key
``<job>:<step>``; ``demo``; ``noop``), submitted over HTTP by a client that retries with an ``Idempotency-Key``.
Meanwhile a random worker is killed with SIGKILL at a random instant, ``--kills`` times, and restarted each time;
once, a storm of concurrent submissions reuses a few ``Idempotency-Key`` values (plus one conflicting payload per
key, which must get a 422); with ``--pg-restart``, PostgreSQL is restarted once mid-run (this drops every other
connection to the server: other people's tests too).

With ``--faults``, each listed fault also runs once on a network lab of its own (``ingestd.testing.chaos_faults``:
the API, two workers and a PostgreSQL cluster on hosts in network namespaces; needs root): a partition between a
worker and the database, a database outage, injected transient errors (SQLSTATE 40001 on step checkpoints), or
30 % packet loss, each for the given seconds. SQLite has no network and no server: its column is the kills only.

Printed per run: jobs lost (accepted with a 202 but missing or not terminal at the end), finished steps run
twice (a simulator call for a step that started after the step's checkpoint was committed), the longest time a
killed worker's job waited to be resumed, and the final statuses. Goal: 0, 0, < 15 s, all terminal. The run
itself is ``ingestd.testing.chaos``, which ``tests/chaos`` drives too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from ingestd.testing.chaos import Options, run_chaos
from ingestd.testing.chaos_faults import FaultOptions, run_fault
from ingestd.testing.chaos_tally import table


def options_from(args: argparse.Namespace, database: str) -> Options:
    options = Options(database=database, kills=args.kills, pg_restart=args.pg_restart and database == "postgres")
    if args.quick:
        options.kills, options.storm_requests = min(args.kills, 20), 50
    return options


async def main(args: argparse.Namespace) -> None:
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    reports = []
    for database in databases if args.kills else []:
        with tempfile.TemporaryDirectory(prefix=f"bench-chaos-{database}-") as folder:
            logs = Path(args.logs) / database if args.logs else Path(folder)
            logs.mkdir(parents=True, exist_ok=True)
            options = options_from(args, database)
            print(f"chaos on {database}: {options.kills} kills (logs in {logs}) ...", flush=True)
            reports.append(await run_chaos(options, logs))
    for spec in filter(None, args.faults.split(",")):
        name, _, seconds = spec.partition(":")
        with tempfile.TemporaryDirectory(prefix=f"bench-chaos-{name}-") as folder:
            logs = Path(args.logs) / f"{name}-{seconds}" if args.logs else Path(folder)
            logs.mkdir(parents=True, exist_ok=True)
            print(f"chaos on a network lab: {name} for {seconds} s (logs in {logs}) ...", flush=True)
            reports.append(await run_fault(FaultOptions(schedule=name, seconds=float(seconds or 5)), logs))
    print()
    print(table(reports))
    if args.json:
        path = Path(args.json.format(database=args.database))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([{**asdict(r), "max_resume_wait": r.max_resume_wait} for r in reports], indent=1))
    goal = all(
        not r.jobs_lost
        and not r.finished_steps_run_twice
        and r.max_resume_wait < 15
        and not r.order_violations
        and not r.stale_accepted
        and not r.never_resumed
        for r in reports
    )
    print(
        "\ngoal (0 lost, 0 run twice, 0 stale writes accepted, resume < 15 s, all terminal, in order):",
        "met" if goal else "NOT met",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--pg-restart", action="store_true", help="restart PostgreSQL once mid-run (disturbs others)")
    ap.add_argument("--logs", help="keep the processes' logs in this folder")
    ap.add_argument("--quick", action="store_true", help="at most 20 kills and a smaller storm")
    ap.add_argument(
        "--faults",
        default="",
        help="faults on a network lab, NAME:SECONDS,...: partition, outage, transient, lossy (root; PostgreSQL only)",
    )
    ap.add_argument("--json", default="bench/out/chaos-{database}.json", help="write the results here ('' to skip)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
