"""The peers' side of bench/peers.py: runs inside bench/.peers (arq, procrastinate, Celery), never in ingestd's venv.

    python peer_drivers.py PEER worker                 # one worker process, concurrency 10
    python peer_drivers.py PEER enqueue N              # enqueue N no-op jobs as fast as the peer allows
    python peer_drivers.py PEER trickle N RATE         # enqueue N jobs at RATE/s (for enqueue→start latency)
    python peer_drivers.py procrastinate schema        # create procrastinate's tables

Every no-op task records, in the bench's own Redis (REDIS_URL), one INCR and its start time, so the figures of
every peer are taken the same way: jobs/s = (n - 1) / (last start - first start), and enqueue→start latency =
start time - the enqueue time carried in the job's arguments.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import redis
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_URL = os.environ.get("BENCH_PROCRASTINATE_URL", "postgresql://postgres@127.0.0.1:5432/bench_procrastinate")
CONCURRENCY = 10

_aio: aioredis.Redis | None = None
_sync = redis.Redis.from_url(REDIS_URL)


async def record_async(enqueued_at: float) -> None:
    global _aio
    if _aio is None:
        _aio = aioredis.Redis.from_url(REDIS_URL)
    now = time.time()
    async with _aio.pipeline(transaction=False) as pipe:
        pipe.incr("bench:done").rpush("bench:lat", now - enqueued_at).set("bench:last", now)
        pipe.setnx("bench:first", now)
        await pipe.execute()


def record_sync(enqueued_at: float) -> None:
    now = time.time()
    pipe = _sync.pipeline(transaction=False)
    pipe.incr("bench:done").rpush("bench:lat", now - enqueued_at).set("bench:last", now)
    pipe.setnx("bench:first", now)
    pipe.execute()


# --- arq ----------------------------------------------------------------------------------------
def arq_settings() -> type:
    from arq.connections import RedisSettings
    from arq.worker import func

    async def noop(ctx: dict, enqueued_at: float) -> None:
        await record_async(enqueued_at)

    class WorkerSettings:
        functions = (func(noop, name="noop"),)
        redis_settings = RedisSettings.from_dsn(REDIS_URL)
        max_jobs = CONCURRENCY
        poll_delay = 0.01  # default 0.5 s caps arq at ~200 jobs/s and ~250 ms latency here: give it its best

    return WorkerSettings


def arq_worker() -> None:
    from arq import run_worker

    run_worker(arq_settings())


async def arq_enqueue(n: int, rate: float | None) -> None:
    from arq import create_pool

    pool = await create_pool(arq_settings().redis_settings)
    for _ in range(n):
        await pool.enqueue_job("noop", time.time())
        if rate:
            await asyncio.sleep(1 / rate)
    await pool.aclose()


# --- Celery -----------------------------------------------------------------------------------
def celery_app():  # type: ignore[no-untyped-def]
    from celery import Celery

    app = Celery("bench", broker=REDIS_URL)
    app.conf.task_ignore_result = True

    @app.task(name="noop")
    def noop(enqueued_at: float) -> None:
        record_sync(enqueued_at)

    return app


def celery_worker() -> None:
    app = celery_app()
    args = ["worker", "-P", "threads", "-c", str(CONCURRENCY), "-l", "warning"]
    app.worker_main([*args, "--without-gossip", "--without-mingle", "--without-heartbeat"])


async def celery_enqueue(n: int, rate: float | None) -> None:
    app = celery_app()
    task = app.tasks["noop"]
    for _ in range(n):
        task.delay(time.time())
        if rate:
            await asyncio.sleep(1 / rate)


# --- procrastinate --------------------------------------------------------------------------
def procrastinate_app():  # type: ignore[no-untyped-def]
    from procrastinate import App, PsycopgConnector

    app = App(connector=PsycopgConnector(conninfo=PG_URL))

    @app.task(name="noop")
    async def noop(enqueued_at: float) -> None:
        await record_async(enqueued_at)

    return app


def procrastinate_worker() -> None:
    procrastinate_app().run_worker(concurrency=CONCURRENCY)


async def procrastinate_enqueue(n: int, rate: float | None) -> None:
    app = procrastinate_app()
    async with app.open_async():
        task = app.tasks["noop"]
        if rate is None:  # batch the bulk load: it is not what is timed
            for start in range(0, n, 1000):
                now = time.time()
                await task.batch_defer_async(*({"enqueued_at": now} for _ in range(min(1000, n - start))))
            return
        for _ in range(n):
            await task.defer_async(enqueued_at=time.time())
            await asyncio.sleep(1 / rate)


async def procrastinate_schema() -> None:
    app = procrastinate_app()
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


WORKERS = {"arq": arq_worker, "celery": celery_worker, "procrastinate": procrastinate_worker}
ENQUEUERS = {"arq": arq_enqueue, "celery": celery_enqueue, "procrastinate": procrastinate_enqueue}


def main(argv: list[str]) -> None:
    peer, action, *rest = argv
    if action == "worker":
        WORKERS[peer]()
    elif action == "enqueue":
        asyncio.run(ENQUEUERS[peer](int(rest[0]), None))
    elif action == "trickle":
        asyncio.run(ENQUEUERS[peer](int(rest[0]), float(rest[1])))
    elif action == "schema" and peer == "procrastinate":
        asyncio.run(procrastinate_schema())
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
