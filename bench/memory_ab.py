"""Paired before/after of the memory recall: another commit's ``graph_postgres.py`` (the PostgreSQL store) or
``retrieve.py`` (recall itself, ``--module retrieve``, on either database) against this tree's, on one loaded
graph, in one process, the queries alternating (random order per query), so that both see the same load on a
shared machine. The rest of the code is this tree's for both.

    git archive <commit> src | tar -x -C /tmp/before        # the store as it was
    .venv/bin/python bench/memory.py --parts search --keep --database postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/memory_ab.py --before /tmp/before/src --queries 300 \
        --graph postgresql://postgres@127.0.0.1:5432/ingestd_bench_mem_search_…
    .venv/bin/python bench/memory_ab.py --before /tmp/before/src --module retrieve --graph sqlite:///…/search.db

Prints, per side, recall + block in process p50 / p90 / p99 / mean, the CPU a query (this process) and the
statements a recall sends to the server (asyncpg calls, the pool's reset queries included).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from asyncpg import connection as pg_connection
from memory import _quantized, _queries

from ingestd.pipelines.memory.embedder import HashingEmbedder
from ingestd.pipelines.memory.graph import Scope, open_graph_store
from ingestd.pipelines.memory.recall import context_json
from ingestd.pipelines.memory.retrieve import recall
from ingestd.providers.registry import offline_embedder
from ingestd.settings import Settings

STATEMENTS = [0]  # asyncpg calls so far


def _count_statements() -> None:
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        method = getattr(pg_connection.Connection, name)

        def counted(self: Any, *args: Any, _method: Any = method, **kw: Any) -> Any:
            STATEMENTS[0] += 1
            return _method(self, *args, **kw)

        setattr(pg_connection.Connection, name, counted)


def _before_module(src: Path, name: str) -> Any:
    path = src / "ingestd" / "pipelines" / "memory" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"before_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _sides(args: argparse.Namespace) -> dict[str, tuple[Any, Any]]:
    """Each side's (graph store, recall function)."""
    if args.module == "retrieve":
        store = await open_graph_store(args.graph)
        return {"before": (store, _before_module(args.before, "retrieve").recall), "after": (store, recall)}
    before = await _before_module(args.before, "graph_postgres").PostgresGraphStore.connect(args.graph)
    return {"before": (before, recall), "after": (await open_graph_store(args.graph), recall)}


async def main(args: argparse.Namespace) -> None:
    _count_statements()
    scope = Scope("default", "big-user")
    embedder = offline_embedder(Settings().memory_embedding, HashingEmbedder)
    texts = _queries(args.queries)
    vectors = (await embedder.embed(texts)).vectors
    stores = await _sides(args)
    for store, recall_for in stores.values():  # each reads the user's vectors once, then a few warm recalls
        for text, vector in list(zip(texts, vectors, strict=True))[:10]:
            await recall_for(store, scope, text, vector)
        await _quantized(store)
    wall: dict[str, list[float]] = {k: [] for k in stores}
    cpu = dict.fromkeys(stores, 0.0)
    sent = dict.fromkeys(stores, 0)
    order = random.Random(5)
    load = os.getloadavg()[0]
    for text, vector in zip(texts, vectors, strict=True):
        sides = list(stores)
        order.shuffle(sides)
        for side in sides:
            count, cpu0, wall0 = STATEMENTS[0], time.process_time(), time.perf_counter()
            store, recall_for = stores[side]
            context_json(scope.user_id, text, await recall_for(store, scope, text, vector))
            wall[side].append(time.perf_counter() - wall0)
            cpu[side] += time.process_time() - cpu0
            sent[side] += STATEMENTS[0] - count
    n = len(texts)
    print(f"recall + block in process, {n} queries, load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| | p50 | p90 | p99 | mean | CPU a query | statements a recall |\n|---|---|---|---|---|---|---|")
    for side in stores:
        w = sorted(wall[side])
        cells = [w[n // 2], w[int(n * 0.9)], w[int(n * 0.99)], sum(w) / n, cpu[side] / n]
        print(f"| {side} | " + " | ".join(f"{c * 1000:.1f} ms" for c in cells) + f" | {sent[side] / n:.1f} |")
    for store in {id(s): s for s, _ in stores.values()}.values():
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", required=True, help="a graph loaded by bench/memory.py --keep")
    parser.add_argument("--module", choices=("graph_postgres", "retrieve"), default="graph_postgres")
    parser.add_argument("--before", type=Path, required=True, help="the src/ folder of the commit to compare with")
    parser.add_argument("--queries", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
