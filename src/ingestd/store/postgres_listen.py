"""Wake-ups between processes on PostgreSQL: one dedicated connection per store that LISTENs, and NOTIFYs for us.

Channels: ``ingestd_events`` (payload: space-separated ids of jobs with new events), ``ingestd_work`` (a job may
have become claimable) and ``ingestd_slots`` (the provider whose slot was freed).

Why the store notifies after its commits instead of triggers inside them (migration 0003): PostgreSQL serialises
committing transactions that NOTIFY with a database-wide lock held through their WAL flush, which cost the job
writes their group commit. Here a write commits, wakes this process's sleepers at once, and queues the
notification; a flusher sends everything queued in one statement on the listening connection, a transaction that
writes no WAL. A notification lost to a crash right after a commit only costs latency: sleepers re-check every
second (``PostgresJobStore.wait_for_events``) and workers poll.

When the connection drops (a server restart) it reconnects with backoff and wakes every sleeper to re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import asyncpg

from ingestd.store.postgres_base import DRIVER_ERRORS, translate
from ingestd.store.wakeup import Waiters, Wake

_RECONNECT_MAX_SECONDS = 2.0
_LIVENESS_SECONDS = 5.0  # how often an idle listening connection is pinged
_MAX_PAYLOAD = 7900  # NOTIFY payloads must stay under 8000 bytes
_NOTIFY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)"
EVENTS, WORK, SLOTS = "ingestd_events", "ingestd_work", "ingestd_slots"


def _payloads(ids: Iterable[str]) -> list[str]:
    chunks: list[str] = []
    current = ""
    for item in ids:
        if current and len(current) + len(item) + 1 > _MAX_PAYLOAD:
            chunks.append(current)
            current = ""
        current = f"{current} {item}" if current else item
    if current:
        chunks.append(current)
    return chunks


class Listener:
    """LISTEN on one connection and wake ``waiters``; ``send`` tells every other process."""

    def __init__(self, url: str, waiters: Waiters) -> None:
        self.url = url
        self.waiters = waiters
        self.connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._own_pid = 0
        self._busy = asyncio.Lock()  # one operation at a time on the connection
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[str] = set()
        self._slots: set[str] = set()
        self._work = False
        self._queued = asyncio.Event()

    async def start(self) -> None:
        """Start listening; returns once the first LISTEN is in place (or raises StoreUnavailable)."""
        try:
            await self._connect()
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        self._tasks = [
            asyncio.create_task(self._supervise(), name="ingestd-pg-listen"),
            asyncio.create_task(self._flush_loop(), name="ingestd-pg-notify"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(), 5)  # what our last commits owe the others
        if self._conn is not None:
            with contextlib.suppress(*DRIVER_ERRORS):
                await asyncio.wait_for(self._conn.close(), 5)
            self._conn = None

    # --- sending ----------------------------------------------------------------------------------
    def send(self, *, work: bool = False, jobs: Iterable[str] = (), slots: Iterable[str] = ()) -> None:
        """Wake this process's sleepers now and queue the notification for the others."""
        job_list = list(jobs)
        slot_list = list(slots)
        self.waiters.notify(Wake(work=work, jobs=job_list + [f"slots:{s}" for s in slot_list]))
        self._work |= work
        self._jobs.update(job_list)
        self._slots.update(slot_list)
        self._queued.set()

    def _take(self) -> tuple[list[str], list[str]]:
        channels: list[str] = []
        payloads: list[str] = []
        for channel, ids in ((EVENTS, self._jobs), (SLOTS, self._slots)):
            for payload in _payloads(ids):
                channels.append(channel)
                payloads.append(payload)
        if self._work:
            channels.append(WORK)
            payloads.append("")
        self._jobs, self._slots, self._work = set(), set(), False
        return channels, payloads

    async def _flush_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            await self._flush()

    async def _flush(self) -> None:
        channels, payloads = self._take()
        conn = self._conn
        if not channels or conn is None or conn.is_closed():
            return  # mute until reconnected: the others poll
        async with self._busy:
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.execute(_NOTIFY, channels, payloads)

    # --- listening --------------------------------------------------------------------------------
    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self.url, timeout=10)
        conn.add_termination_listener(lambda _: self._lost.set())
        try:
            for channel in (EVENTS, WORK, SLOTS):
                await conn.add_listener(channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._own_pid = conn.get_server_pid()
        self._conn = conn
        self.connected.set()

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if pid == self._own_pid:
            return  # our own: this process's sleepers were woken when it was sent
        text = str(payload)
        if channel == EVENTS:
            self.waiters.notify(Wake(jobs=text.split()))
        elif channel == WORK:
            self.waiters.notify(Wake(work=True))
        else:
            self.waiters.notify(Wake(jobs=[f"slots:{p}" for p in text.split()]))

    async def _supervise(self) -> None:
        delay = 0.05
        while True:
            await self._watch()
            self.connected.clear()
            self._conn = None
            try:
                await self._connect()
            except DRIVER_ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)
                continue
            delay = 0.05
            self.waiters.notify_everyone()  # anything may have happened while we were deaf

    async def _watch(self) -> None:
        """Return once the connection is gone: closed by the server, or not answering a ping."""
        while (conn := self._conn) is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(self._lost.wait(), _LIVENESS_SECONDS)
                break
            except TimeoutError:
                pass
            try:
                async with self._busy:
                    await asyncio.wait_for(conn.execute("SELECT 1"), _LIVENESS_SECONDS)
            except DRIVER_ERRORS:
                conn.terminate()
                break


__all__ = ["Listener"]
