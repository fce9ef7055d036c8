"""The audio-sync incident, replayed time-scaled: a synchronous endpoint behind a 120 s timeout versus ingestd.

    .venv/bin/python bench/replay.py [--uploads 40] [--time-scale 0.1] [--attempts 3] [--json bench/out/replay.json]

A burst of uploads shaped like the incident's (1-32 MB, up to 487 s of speech, P50 about 17 s of processing, a tail
past 120 s) goes through two systems that make exactly the same provider calls (``sim_pipelines``: decode, VAD,
per 30 s segment a Deepgram transcription and a structured chat completion) against the provider simulator:

(a) the old way: an HTTP endpoint doing the work inline, one segment after the other, behind a 120 s timeout
    (the middleware's cutoff); its client retries a timed-out request, as the wearable's did. Work whose client
    has given up keeps running (nobody cancels it), so retries pile onto the providers;
(b) ingestd: ``ingestd serve`` (SQLite, one process, 16 jobs at once) answers 202 at once, runs the stages with
    four segments of a job in parallel (no provider limit unless ``--provider-concurrency N``), and the client
    polls every 5 s (simulated).

Durations are simulated seconds (wall-clock seconds / time scale), except the connection-seconds of ingestd's
clients: those requests wait on no simulated provider, so their wall-clock time is counted as is. Printed: requests
that timed out, provider calls made versus needed (the surplus was paid twice), connection-seconds held by clients
(what an orchestrator that waits is billed for), and the time until every upload is processed. Upload bodies are
not sent over loopback: an upload's size only sets its decode time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from common import percentile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingestd.sim.testing import SimulatorURL, running_simulator
from ingestd.testing.processes import bench_env, start_server
from ingestd.testing.sim_pipelines import (
    DECODE_SECONDS_PER_MB,
    SEGMENT_ROUTES,
    SimAudioInput,
    SimCalls,
    calls_needed,
    decode,
    segments,
)

TIMEOUT = 120.0  # the middleware's cutoff, simulated seconds
RETRY_BACKOFF = 2.0
POLL_EVERY = 5.0


@dataclass(frozen=True)
class Upload:
    id: str
    megabytes: float
    speech_seconds: float
    arrives: float  # simulated seconds after the burst starts

    def sync_seconds(self) -> float:
        """Processing time on the old endpoint with idle providers (medians): decode + VAD + segments in turn."""
        return self.megabytes * DECODE_SECONDS_PER_MB + 0.3 + segments(self.speech_seconds) * (3.25 + 4.0)


def make_uploads(count: int, seed: int, burst_seconds: float) -> list[Upload]:
    """Speech lognormal (median 60 s) clipped to 5-487 s, one upload at the reported 487 s; 1-32 MB."""
    rng = random.Random(seed)
    uploads = []
    for i in range(count):
        speech = 487.0 if i == count - 1 else min(487.0, max(5.0, rng.lognormvariate(math.log(60), 0.9)))
        megabytes = min(32.0, max(1.0, speech * 0.066 * rng.uniform(0.6, 1.4)))
        uploads.append(Upload(f"u{i:03d}", round(megabytes, 1), round(speech, 1), rng.uniform(0, burst_seconds)))
    return sorted(uploads, key=lambda u: u.arrives)


@dataclass
class SideResult:
    """What one system did with the burst."""

    name: str
    timed_out: int = 0
    requests: int = 0
    calls_made: int = 0
    calls_needed: int = 0
    connection_seconds: float = 0.0
    finished: dict[str, float] = field(default_factory=dict)  # upload -> simulated seconds after the burst start
    never_finished: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.calls_made - self.calls_needed

    @property
    def all_done_seconds(self) -> float | None:
        return max(self.finished.values()) if self.finished and not self.never_finished else None


# --- (a) the synchronous endpoint -----------------------------------------------------------------------------


class SyncServer:
    """The old endpoint: ``POST /sync`` does every stage inline and answers when done."""

    def __init__(self, sim: str, scale: float) -> None:
        self.sim, self.scale, self.in_flight = sim, scale, 0
        self.app = Starlette(routes=[Route("/sync", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> JSONResponse:
        upload = await request.json()
        inp = SimAudioInput(megabytes=upload["megabytes"], speech_seconds=upload["speech_seconds"])
        inp = inp.model_copy(update={"time_scale": self.scale})
        self.in_flight += 1
        try:  # a disconnected client does not stop this: the work goes on for nobody, as it did
            async with httpx.AsyncClient(timeout=None) as client:
                calls = SimCalls(client, self.sim, upload["id"])
                await decode(inp)
                await calls.vad()
                for i in range(segments(inp.speech_seconds)):
                    await calls.structure(i, await calls.transcribe(i))
        finally:
            self.in_flight -= 1
        return JSONResponse({"id": upload["id"], "status": "processed"})


@contextmanager
def serve_in_thread(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a background thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def sync_client(url: str, upload: Upload, args: argparse.Namespace, t0: float, out: SideResult) -> None:
    """Upload, wait up to the timeout, retry after a timeout; as the wearable's client did."""
    scale = args.time_scale
    await asyncio.sleep(upload.arrives * scale)
    async with httpx.AsyncClient(timeout=TIMEOUT * scale) as client:
        for attempt in range(1, args.attempts + 1):
            started = time.monotonic()
            body = {**asdict(upload), "attempt": attempt}
            out.requests += 1
            try:
                response = await client.post(url + "/sync", json=body)
                response.raise_for_status()
            except httpx.TimeoutException:
                out.timed_out += 1
                out.connection_seconds += (time.monotonic() - started) / scale
                await asyncio.sleep(RETRY_BACKOFF * scale)
                continue
            out.connection_seconds += (time.monotonic() - started) / scale
            out.finished[upload.id] = (time.monotonic() - t0) / scale
            return
    out.never_finished.append(upload.id)


async def run_sync_side(sim: SimulatorURL, uploads: list[Upload], args: argparse.Namespace) -> SideResult:
    out = SideResult("synchronous endpoint, 120 s timeout, client retries")
    server = SyncServer(sim, args.time_scale)
    with serve_in_thread(server.app) as url:
        t0 = time.monotonic()
        await asyncio.gather(*(sync_client(url, u, args, t0, out) for u in uploads))
        while server.in_flight:  # the abandoned work still runs, and still calls the providers
            await asyncio.sleep(0.05)
    return out


# --- (b) ingestd ------------------------------------------------------------------------------------------------


async def ingestd_client(url: str, upload: Upload, args: argparse.Namespace, t0: float, out: SideResult) -> None:
    """Submit (202 at once), then poll every 5 s until the job is terminal."""
    scale = args.time_scale
    await asyncio.sleep(upload.arrives * scale)
    inp = {"megabytes": upload.megabytes, "speech_seconds": upload.speech_seconds, "time_scale": scale}
    # These requests wait on no simulated provider, so their wall-clock time is counted as is (not divided by
    # the time scale, which would inflate the API's own milliseconds twenty-fold).
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        response = await client.post(url + "/v1/pipelines/simaudio/jobs", json=inp)
        out.requests += 1
        out.connection_seconds += time.monotonic() - started
        response.raise_for_status()
        job = response.json()
        while job["status"] in ("queued", "running"):
            await asyncio.sleep(POLL_EVERY * scale)
            started = time.monotonic()
            job = (await client.get(f"{url}/v1/jobs/{job['id']}")).json()
            out.requests += 1
            out.connection_seconds += time.monotonic() - started
    if job["status"] != "succeeded":
        out.never_finished.append(upload.id)
        return
    finished = datetime.fromisoformat(job["finished_at"]).timestamp()
    out.finished[upload.id] = (finished - t0) / scale


async def run_ingestd_side(sim: SimulatorURL, uploads: list[Upload], args: argparse.Namespace) -> SideResult:
    out = SideResult("ingestd serve (SQLite), 202 + polling")
    limits = {p: {"concurrency": args.provider_concurrency} for p in ("openai", "deepgram")}
    limits = limits if args.provider_concurrency > 0 else {}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as folder:
        env = bench_env(sim, provider_limits=limits, worker_concurrency=args.worker_concurrency)
        server, url = start_server(f"sqlite:///{folder}/replay.db", env, Path(folder), with_worker=True)
        try:
            t0 = time.time()
            await asyncio.gather(*(ingestd_client(url, u, args, t0, out) for u in uploads))
        finally:
            server.stop()
    return out


# --- the run --------------------------------------------------------------------------------------------------


async def side(name: str, uploads: list[Upload], args: argparse.Namespace) -> SideResult:
    """Run one system against a fresh simulator; count its calls."""
    routes = {**SEGMENT_ROUTES, "chat": {"contention_knee": 16, "contention_k": 0.1}}
    with running_simulator({"time_scale": args.time_scale, "seed": args.seed, "routes": routes}) as sim:
        runner = run_sync_side if name == "sync" else run_ingestd_side
        out = await runner(sim, uploads, args)
        out.calls_made = int(sim.stats()["total_calls"])
    out.calls_needed = sum(calls_needed(u.speech_seconds) for u in uploads)
    return out


def describe_uploads(uploads: list[Upload]) -> str:
    work = [u.sync_seconds() for u in uploads]
    sizes = [u.megabytes for u in uploads]
    return (
        f"{len(uploads)} uploads in a burst: {min(sizes):g}-{max(sizes):g} MB, speech up to "
        f"{max(u.speech_seconds for u in uploads):g} s; processing time on idle providers "
        f"p50 {percentile(work, 50):.0f} s, p90 {percentile(work, 90):.0f} s, max {max(work):.0f} s"
    )


def table(results: list[SideResult]) -> str:
    rows: list[tuple[str, Callable[[SideResult], str]]] = [
        ("requests that timed out", lambda r: f"{r.timed_out} of {r.requests}"),
        ("provider calls made / needed", lambda r: f"{r.calls_made} / {r.calls_needed}"),
        ("  paid twice (duplicates)", lambda r: str(r.duplicates)),
        ("connection-seconds held", lambda r: f"{r.connection_seconds:,.{0 if r.connection_seconds >= 10 else 1}f}"),
        ("uploads processed", lambda r: f"{len(r.finished)} of {len(r.finished) + len(r.never_finished)}"),
        ("time until every upload is done", lambda r: _seconds(r.all_done_seconds)),
        ("p50 / p95 time to done", lambda r: _p50_p95(r)),
    ]
    head = ["", *(r.name.split(",")[0] for r in results)]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {label} | {' | '.join(cell(r) for r in results)} |" for label, cell in rows]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "never (uploads lost)" if value is None else f"{value:,.0f} s"


def _p50_p95(r: SideResult) -> str:
    done = list(r.finished.values())
    return f"{percentile(done, 50):.0f} s / {percentile(done, 95):.0f} s" if done else "-"


async def main(args: argparse.Namespace) -> None:
    uploads = make_uploads(args.uploads, args.seed, args.burst_seconds)
    print(describe_uploads(uploads), flush=True)
    results = [await side(name, uploads, args) for name in ("sync", "ingestd")]
    print(f"\ntime scale {args.time_scale:g} (1 simulated second = {args.time_scale:g} s); simulated seconds\n")
    print(table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        doc = {"args": vars(args), "uploads": [asdict(u) for u in uploads], "results": [_doc(r) for r in results]}
        Path(args.json).write_text(json.dumps(doc, indent=1))


def _doc(r: SideResult) -> dict[str, Any]:
    return {**asdict(r), "duplicates": r.duplicates, "all_done_seconds": r.all_done_seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=40)
    ap.add_argument("--burst-seconds", type=float, default=30.0, help="the uploads arrive within this (simulated)")
    ap.add_argument("--time-scale", type=float, default=0.1, help="wall-clock seconds per simulated second")
    ap.add_argument("--attempts", type=int, default=3, help="tries of the synchronous client per upload")
    ap.add_argument("--worker-concurrency", type=int, default=16, help="jobs the ingestd worker runs at once")
    ap.add_argument(
        "--provider-concurrency", type=int, default=0, help="ingestd's fleet-wide limit per provider (0: none)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default="bench/out/replay.json", help="write the results here ('' to skip)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
