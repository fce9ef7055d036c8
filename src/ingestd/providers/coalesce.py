"""Calls coalesced into batches: the calls of one event loop run one batch at a time, in a thread, each batch
holding every call that arrived while the previous one ran.

A worker runs many jobs at once, and each asks a local model for a little (an episode to parse, its texts to
embed). Run side by side, those calls oversubscribe the cores and pad short batches; one batch at a time, they
cost about half the CPU per item (``providers.onnx_embedder``, ``pipelines.memory.offline``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")

# One batch's outcomes, one per call, in order: a result, or the exception that call alone raises.
BatchRun = Callable[[list[A]], list[R | Exception]]


class Coalescer(Generic[A, R]):
    """``await coalescer(item)`` runs ``run([..., item, ...])`` in a thread with the items of the calls made
    meanwhile (at most ``limit`` a batch). If ``run`` raises, every call of the batch raises it."""

    def __init__(self, run: BatchRun[A, R], limit: int | None = None) -> None:
        self._run = run
        self._limit = limit
        self._pending: list[tuple[A, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: A) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # the calls made in this turn of the loop join the batch
                cut = len(self._pending) if self._limit is None else self._limit
                batch, self._pending = self._pending[:cut], self._pending[cut:]
                try:
                    outcomes = await asyncio.to_thread(self._run, [item for item, _ in batch])
                except Exception as exc:  # every caller of the batch sees the failure
                    outcomes = [exc] * len(batch)
                except BaseException:  # cancelled: so are the calls waiting for this batch
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._task = None


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
