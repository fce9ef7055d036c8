"""Calls coalesced into batches: the calls of one event loop run one batch at a time, in a thread, each batch
holding every call that arrived while the previous one ran.

A worker runs many jobs at once, and each asks a local model for a little (an episode to parse, its texts to
embed). Run side by side, those calls oversubscribe the cores and pad short batches; one batch at a time, they
cost about half the CPU per item (``providers.onnx_embedder``, ``pipelines.memory.offline``). The batching loop is
the store's group commit (``ingestd.batching``); this module runs each batch in a thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ingestd.batching import Batcher, Outcome

A = TypeVar("A")
R = TypeVar("R")

# One batch's outcomes, one per call, in order: a result, or the exception that call alone raises.
BatchRun = Callable[[list[A]], list[R | Exception]]


class Coalescer(Generic[A, R]):
    """``await coalescer(item)`` runs ``run([..., item, ...])`` in a thread with the items of the calls made
    meanwhile (at most ``limit`` a batch). If ``run`` raises, every call of the batch raises it."""

    def __init__(self, run: BatchRun[A, R], limit: int | None = None) -> None:
        self._run = run
        self._batches = Batcher(self._in_thread, "ingestd-coalesce", limit=limit)

    async def __call__(self, item: A) -> R:
        result: R = await self._batches.submit(item)
        return result

    async def _in_thread(self, batch: list[A]) -> list[Outcome]:
        outcomes = await asyncio.to_thread(self._run, batch)
        return [(not isinstance(outcome, Exception), outcome) for outcome in outcomes]


class PerLoop(Generic[A, R]):
    """A ``Coalescer`` per running event loop and key (a loop's futures belong to it; a closed loop's go with it)."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Coalescer[A, R]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, key: Hashable, make: Callable[[], Coalescer[A, R]]) -> Coalescer[A, R]:
        mine = self._loops.setdefault(asyncio.get_running_loop(), {})
        if key not in mine:
            mine[key] = make()
        return mine[key]


__all__ = ["BatchRun", "Coalescer", "PerLoop"]
