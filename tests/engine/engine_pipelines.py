"""Pipelines for the engine tests, loaded through ``Settings.pipeline_modules`` (``engine_pipelines:PIPELINES``),
in process and in worker subprocesses alike. Their side effects are lines appended to a log file (``O_APPEND``
writes of one short line are atomic across processes), so a test counts executions, not log messages."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from pydantic import BaseModel

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline, RetryPolicy


def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def lines(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.read().splitlines()


class CountInput(BaseModel):
    log: str
    items: int = 4
    seconds: float = 0.0
    concurrency: int = 4
    gate: str | None = None  # items with index >= gate_from wait until this file exists
    gate_from: int = 0
    flaky: dict[int, int] = {}  # index -> transient failures before it succeeds
    fail: list[int] = []  # indexes that fail permanently
    always_transient: list[int] = []  # indexes that keep failing transiently
    attempts: int = 3


async def run_count(ctx: Context, inp: CountInput) -> JSON:
    job = ctx.job.id

    async def prepare() -> list[int]:
        append(inp.log, f"{job} end prepare")
        return list(range(inp.items))

    async def work(index: int, _item: int) -> int:
        key = f"work[{index}]"
        append(inp.log, f"{job} try {key}")
        if inp.gate is not None and index >= inp.gate_from:
            while not os.path.exists(inp.gate):
                await asyncio.sleep(0.02)
        await asyncio.sleep(inp.seconds)
        tries = lines(inp.log).count(f"{job} try {key}")
        if index in inp.always_transient or tries <= inp.flaky.get(index, 0):
            raise errors.TransientError(f"flaky {key}, try {tries}")
        if index in inp.fail:
            raise errors.PermanentError(f"{key} is broken")
        append(inp.log, f"{job} end {key}")
        return index

    items = await ctx.step("prepare", prepare)
    retry = RetryPolicy(attempts=inp.attempts, base_seconds=0.01, max_seconds=0.05)
    done = await ctx.map("work", items, work, concurrency=inp.concurrency, retry=retry)

    async def collect() -> JSON:
        append(inp.log, f"{job} end collect")
        return {"ok": sorted(done.ok), "failed": sorted(done.failed)}

    return await ctx.step("collect", collect)


class LogInput(BaseModel):
    log: str
    seconds: float = 0.0
    tag: str = ""


async def run_once(ctx: Context, inp: LogInput) -> JSON:
    """Appends one line per execution, outside any step: counts how often a job was run at all."""
    append(inp.log, f"{ctx.job.id} run {inp.tag} {time.time():.6f}")
    await asyncio.sleep(inp.seconds)
    append(inp.log, f"{ctx.job.id} done {inp.tag} {time.time():.6f}")
    return {"tag": inp.tag}


async def run_bug(ctx: Context, inp: LogInput) -> JSON:
    """A bug outside any step."""
    return {"value": {}["missing"]}


async def run_bug_in_step(ctx: Context, inp: LogInput) -> JSON:
    async def divide() -> float:
        return 1 / 0

    return {"value": await ctx.step("divide", divide)}


class CallInput(BaseModel):
    log: str
    url: str


async def run_slow_call(ctx: Context, inp: CallInput) -> JSON:
    """One provider call to a server that never answers; appends ``after`` if the call ever returns."""

    async def call() -> int:
        async with httpx.AsyncClient(timeout=60) as client:
            append(inp.log, f"{ctx.job.id} calling")
            response = await ctx.call("slow", lambda: client.get(inp.url))
            append(inp.log, f"{ctx.job.id} after")
            return response.status_code

    return {"status": await ctx.step("call", call)}


class TimeoutInput(BaseModel):
    log: str
    timeout: float = 0.1
    attempts: int = 2


async def run_hang(ctx: Context, inp: TimeoutInput) -> JSON:
    """A step that never ends on its own: only its per-step timeout stops it."""

    async def hang() -> None:
        append(inp.log, f"{ctx.job.id} try hang")
        await asyncio.sleep(3600)
        append(inp.log, f"{ctx.job.id} after hang")

    retry = RetryPolicy(attempts=inp.attempts, base_seconds=0.01, max_seconds=0.02)
    await ctx.step("hang", hang, timeout=inp.timeout, retry=retry)
    return {}


async def run_http_retry(ctx: Context, inp: CallInput) -> JSON:
    """One HTTP call that raises on 4xx/5xx, retried quickly unless the server asks for more time."""

    async def call() -> str:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await ctx.call("http", lambda: client.get(inp.url))
            response.raise_for_status()
            append(inp.log, f"{ctx.job.id} answered {time.time():.6f}")
            return response.text

    retry = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.02)
    return {"body": await ctx.step("call", call, retry=retry)}


async def run_usage(ctx: Context, inp: LogInput) -> JSON:
    async def ask(index: int, _item: int) -> int:
        await ctx.call("llm", lambda: _answer({"tokens_in": 10, "tokens_out": 2}))
        return index

    await ctx.map("ask", [0, 1, 2], ask)
    return {}


async def _answer(usage: JSON) -> JSON:
    return {"usage": usage}


def _p(name: str, model: type[BaseModel], run: object) -> Pipeline:
    return Pipeline(name=name, input_model=model, run=run)  # type: ignore[arg-type]


PIPELINES = [
    _p("count", CountInput, run_count),
    _p("once", LogInput, run_once),
    _p("bug", LogInput, run_bug),
    _p("bug_in_step", LogInput, run_bug_in_step),
    _p("slow_call", CallInput, run_slow_call),
    _p("usage", LogInput, run_usage),
    _p("hang", TimeoutInput, run_hang),
    _p("http_retry", CallInput, run_http_retry),
]
