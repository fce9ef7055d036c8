"""Progress of a job's maps: what ``job.progress`` says while ``ctx.map`` fans out.

A map's count of finished items reaches the store at most every ``PROGRESS_INTERVAL_SECONDS``, and every change
does reach it (late by at most one interval), so the API shows the finished-item count within a heartbeat. When
maps overlap (the audio pipeline structures conversations while clips are still being transcribed), the oldest
running map is shown until it ends, then the next: the bar does not flip between two stages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

PROGRESS_INTERVAL_SECONDS = 0.25  # at most ~4 job.progress events a second per map


class ProgressBoard:
    """The job's progress writes (one at a time, so counts reach the store in order) and its running maps.

    Args:
        write: stores ``(stage, done, total)`` as the job's progress.
    """

    def __init__(self, write: Callable[[str, int, int], Awaitable[None]]) -> None:
        self._write = write
        self._lock = asyncio.Lock()
        self._shown: tuple[str, int, int] | None = None  # the last count a map showed: not written twice
        self.maps: list[MapProgress] = []  # the maps running now, oldest first

    async def write(self, stage: str, done: int, total: int) -> None:
        """Store the job's progress."""
        async with self._lock:
            await self._write(stage, done, total)

    def track(self, stage: str, total: int, *, done: int = 0) -> MapProgress:
        """A map's progress (``done``: items restored from checkpoints), to use as ``async with``."""
        return MapProgress(self, stage, total, done=done)

    async def show_leader(self, finished: MapProgress | None = None) -> None:
        """Store the oldest running map's count; when the last one ends, its final count."""
        leader = self.maps[0] if self.maps else finished
        if leader is None or (leader.stage, leader.done, leader.total) == self._shown:
            return
        self._shown = (leader.stage, leader.done, leader.total)
        await self.write(*self._shown)


class MapProgress:
    """A map's count of finished items, reported at most every ``PROGRESS_INTERVAL_SECONDS`` by a task of its own.

    Every change is reported: one that comes too soon after the last report goes out when the interval is over,
    so the job's progress trails the finished-item count by at most one interval (never by a whole item).
    """

    def __init__(self, board: ProgressBoard, stage: str, total: int, *, done: int = 0) -> None:
        self.board, self.stage, self.total, self.done = board, stage, total, done
        self._changed = asyncio.Event()
        self._ended = asyncio.Event()
        self._reporter: asyncio.Task[None] | None = None

    def advance(self) -> None:
        """One more item finished (succeeded or failed for good)."""
        self.done += 1
        self._changed.set()

    async def __aenter__(self) -> MapProgress:
        self.board.maps.append(self)
        if self.board.maps[0] is self:  # a map started while another runs waits for its turn to be shown
            await self.board.show_leader()
        self._reporter = asyncio.create_task(self._report_changes())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._ended.set()
        self._changed.set()
        self.board.maps.remove(self)
        if self._reporter is None:
            return
        if exc_type is not None:  # the map failed or was cancelled: its error is the one to raise
            self._reporter.cancel()
            return
        await self._reporter  # ends at once (at most one report in flight); raises a store error it met
        await self.board.show_leader(finished=self)

    async def _report_changes(self) -> None:
        while True:
            await self._changed.wait()
            if self._ended.is_set():
                return
            self._changed.clear()
            if self.board.maps[0] is self:  # a later map's count is shown once the ones before it end
                await self.board.show_leader()
            with contextlib.suppress(TimeoutError):  # the pause between reports, cut short when the map ends
                async with asyncio.timeout(PROGRESS_INTERVAL_SECONDS):
                    await self._ended.wait()


__all__ = ["PROGRESS_INTERVAL_SECONDS", "MapProgress", "ProgressBoard"]
