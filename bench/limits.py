"""Fleet-wide provider limiter: how close to the limit it runs, and how it shares it between tenants.

Each "process" is a ``Limiter`` on its own store connection (in this one Python process, so the numbers are the
store's and the limiter's cost, not the machine's). The "provider" is an ``asyncio.sleep`` of a fixed latency
that counts the calls in flight itself, so the peak is measured where it matters.

- **throughput**: ``calls`` calls queued at once against a limit of ``limit`` concurrent calls of ``latency``
  seconds: the ideal is ``limit / latency`` calls/s; efficiency is achieved / ideal (the gap is the store round
  trip between a release and the next grant).
- **fairness**: tenant A queues ``calls`` calls, then tenant B queues ``calls // 10``; how many of A's calls had
  finished when B's last one did (first-come-first-served: all of them).

    .venv/bin/python bench/limits.py                       # both backends, 1 and 3 processes
    .venv/bin/python bench/limits.py --backends sqlite --calls 400
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from common import fresh_database

from ingestd.limits import Limiter
from ingestd.settings import ProviderLimit
from ingestd.store import open_store


class Provider:
    """A provider of fixed latency that counts its calls in flight."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.in_flight = 0
        self.peak = 0
        self.finished: list[tuple[str, float]] = []  # (tenant, when)

    async def call(self, tenant: str) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
            self.finished.append((tenant, time.monotonic()))


@contextlib.asynccontextmanager
async def limiters(url: str, processes: int, limit: int) -> AsyncIterator[list[Limiter]]:
    stores = [await open_store(url, migrate=False) for _ in range(processes)]
    made = [Limiter(s, {"p": ProviderLimit(concurrency=limit)}) for s in stores]  # type: ignore[arg-type]
    try:
        yield made
    finally:
        for item in [*made, *stores]:
            await item.close()


async def throughput(url: str, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    provider = Provider(args.latency)
    async with limiters(url, processes, args.limit) as made:
        calls = [made[i % processes].call("p", lambda: provider.call("t"), tenant="t") for i in range(args.calls)]
        started = time.monotonic()
        await asyncio.gather(*calls)
        seconds = time.monotonic() - started
    ideal = args.limit / args.latency
    rate = args.calls / seconds
    return {"calls/s": rate, "ideal/s": ideal, "efficiency": rate / ideal, "peak": provider.peak}


async def fairness(url: str, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    provider = Provider(args.latency)
    light = max(1, args.calls // 10)
    async with limiters(url, processes, args.limit) as made:
        busy_calls = [
            made[i % processes].call("p", lambda: provider.call("busy"), tenant="busy") for i in range(args.calls)
        ]
        tasks = [asyncio.ensure_future(c) for c in busy_calls]
        await asyncio.sleep(0.05)  # the busy tenant's calls are all queued first
        light_calls = [
            made[i % processes].call("p", lambda: provider.call("light"), tenant="light") for i in range(light)
        ]
        await asyncio.gather(*tasks, *light_calls)
    light_done = max(t for tenant, t in provider.finished if tenant == "light")
    busy_before = sum(1 for tenant, t in provider.finished if tenant == "busy" and t <= light_done)
    return {"light_calls": light, "busy_done_before_light": busy_before, "busy_calls": args.calls}


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'backend':9} {'procs':>5} {'limit':>5} {'calls/s':>9} {'ideal/s':>8} {'effic.':>7} {'peak':>5}"
        f" {'fairness: busy calls done when light finished':>46}"
    )
    for r in rows:
        fair = f"{r['busy_done_before_light']} of {r['busy_calls']} (light: {r['light_calls']} calls)"
        print(
            f"{r['backend']:9} {r['processes']:>5} {r['limit']:>5} {r['calls/s']:>9.0f} {r['ideal/s']:>8.0f}"
            f" {r['efficiency']:>7.0%} {r['peak']:>5} {fair:>46}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--processes", default="1,3", help="comma-separated limiter counts")
    ap.add_argument("--limit", type=int, default=8, help="concurrent calls allowed")
    ap.add_argument("--latency", type=float, default=0.02, help="seconds per provider call")
    ap.add_argument("--calls", type=int, default=800)
    return ap.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    rows: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        for processes in (int(p) for p in args.processes.split(",")):
            async with fresh_database(backend, "limits") as url:
                row = {"backend": backend, "processes": processes, "limit": args.limit}
                row |= await throughput(url, processes, args)
            async with fresh_database(backend, "limits") as url:
                row |= await fairness(url, processes, args)
            rows.append(row)
    print_table(rows)
    return rows


if __name__ == "__main__":
    asyncio.run(main())
