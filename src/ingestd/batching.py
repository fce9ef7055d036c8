"""Batches: what is asked for while one batch runs goes together in the next.

One loop, three users. The store's group commit: SQLite commits every write this way (one ``BEGIN IMMEDIATE`` ...
``COMMIT`` for the writes queued meanwhile, see ``store.sqlite._tx``), PostgreSQL its finishes (one
``FINISH_MANY`` statement, see ``store.postgres_jobs``): a busy process then pays one commit (one thread hop or
round trip, one WAL flush) for many requests, and an idle one pays no wait at all, since the first request of a
batch starts at once (measured by ``bench/engine.py``). And the local models' calls (``providers.coalesce``): a
worker's concurrent calls run one batch at a time in a thread instead of oversubscribing the cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

ItemT = TypeVar("ItemT")
# What a batch says of each item, in order: (True, its result) or (False, the exception its caller gets).
Outcome = tuple[bool, Any]


class Batcher(Generic[ItemT]):
    """Runs ``run(batch)`` for the items queued by ``submit`` while the previous batch was running (at most
    ``limit`` items a batch; the rest wait for the next).

    ``run`` returns one ``Outcome`` per item; if it raises, every caller of that batch gets the exception. An item
    whose caller was cancelled runs all the same (it may already be in flight).
    """

    def __init__(
        self, run: Callable[[list[ItemT]], Awaitable[list[Outcome]]], name: str, *, limit: int | None = None
    ) -> None:
        self._run = run
        self._name = name
        self._limit = limit
        self._pending: list[tuple[ItemT, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: ItemT) -> Any:
        """Queue ``item`` for the next batch and wait for its outcome."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=self._name)
        return await asyncio.shield(future)

    async def flush(self) -> None:
        """Wait until what was queued so far has run (or failed)."""
        if self._task is not None:
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._pending:
                cut = len(self._pending) if self._limit is None else self._limit
                batch, self._pending = self._pending[:cut], self._pending[cut:]
                try:
                    outcomes = await self._run([item for item, _ in batch])
                except Exception as exc:  # the batch as a whole failed: every item in it did
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except asyncio.CancelledError:
                    for _, future in [*batch, *self._pending]:
                        future.cancel()
                    raise
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(value) if ok else future.set_exception(value)
        finally:
            self._task = None


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A caller cancelled while its item was running never reads the outcome: mark it read (no loop warning).
    if not future.cancelled():
        future.exception()


__all__ = ["Batcher", "Outcome"]
