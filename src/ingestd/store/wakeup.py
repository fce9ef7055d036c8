"""Wake-ups: waking ``wait_for_work`` / ``wait_for_events`` callers promptly when something commits.

``Waiters`` holds this process's sleepers (asyncio futures; used by every backend). ``WakeSocket`` carries
wake-ups between processes sharing one SQLite file: every store binds a unix datagram socket in a folder next to
the database (``<db>.wake/<pid>-<rand>.sock``); a commit that matters sends one tiny datagram to every other socket
there, without blocking, and removes the sockets of dead processes. A lost datagram (a peer's buffer full) costs
only latency: the SQLite store also polls ``PRAGMA data_version`` every second as a fallback.

Message format: ``b"w"`` (work may be claimable) or ``b"-"``, then the ids of jobs with new events, space separated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

_MAX_DATAGRAM = 4096
_MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


@dataclass
class Wake:
    """What one committed transaction should wake: workers (``work``) and/or followers of these jobs."""

    work: bool = False
    jobs: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.work or bool(self.jobs)

    def encode(self) -> list[bytes]:
        head = b"w" if self.work else b"-"
        messages, current = [], head
        for job_id in self.jobs:
            part = b" " + job_id.encode()
            if len(current) + len(part) > _MAX_DATAGRAM:
                messages.append(current)
                current = head
            current += part
        messages.append(current)
        return messages

    @classmethod
    def decode(cls, message: bytes) -> Wake:
        parts = message.decode(errors="replace").split()
        if not parts:
            return cls()
        return cls(work=parts[0] == "w", jobs=parts[1:])


class Waiters:
    """This process's sleepers. Call ``notify`` from the event loop's thread only."""

    def __init__(self) -> None:
        self._work: set[asyncio.Future[None]] = set()
        self._events: dict[str, set[asyncio.Future[None]]] = {}

    def notify(self, wake: Wake) -> None:
        if wake.work:
            self._wake_all(self._work)
        for job_id in wake.jobs:
            sleepers = self._events.get(job_id)
            if sleepers:
                self._wake_all(sleepers)

    def notify_everyone(self) -> None:
        """Wake every sleeper (they re-check): after a reconnect or when a fallback poll saw a change."""
        self._wake_all(self._work)
        for sleepers in self._events.values():
            self._wake_all(sleepers)

    @staticmethod
    def _wake_all(futures: Iterable[asyncio.Future[None]]) -> None:
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def sleep_for_work(self, timeout: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._work.add(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            self._work.discard(future)

    async def wait_for_events(
        self, job_id: str, after: int, timeout: float, last_seq: Callable[[str], Awaitable[int]], recheck: float
    ) -> bool:
        """``JobStore.wait_for_events`` for a backend whose ``last_seq`` reads a job's last event number: True once
        it passes ``after``, False after ``timeout`` seconds. Between checks it sleeps until a wake-up for the job,
        but re-checks at least every ``recheck`` seconds, since a wake-up can be lost (a full datagram buffer,
        a NOTIFY while the listener reconnects)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.events_sleeper(job_id) as woken:
                if await last_seq(job_id) > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken, min(remaining, recheck))

    @contextlib.contextmanager
    def events_sleeper(self, job_id: str) -> Iterator[asyncio.Future[None]]:
        """A future resolved at the next wake-up for ``job_id``. Register it *before* checking the store, so a
        commit between the check and the sleep is not missed."""
        future = asyncio.get_running_loop().create_future()
        sleepers = self._events.setdefault(job_id, set())
        sleepers.add(future)
        try:
            yield future
        finally:
            sleepers.discard(future)
            if not sleepers:
                self._events.pop(job_id, None)


class WakeSocket:
    """This process's datagram socket in the shared wake folder, and the sender to its peers.

    ``send`` may be called from any thread (the SQLite store calls it from its database thread right after a
    commit); received wake-ups are handed to ``on_wake`` in the event loop.
    """

    def __init__(self, folder: str, on_wake: Callable[[Wake], None]) -> None:
        self.folder = folder
        self._on_wake = on_wake
        self._name = f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        self._lock = threading.Lock()
        self._peers: list[str] = []
        self._peers_mtime = -1
        self._dir_fd = -1
        self._recv: socket.socket | None = None
        self._send: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _address(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        # sun_path is short; a deep folder (pytest's tmp_path) is reached through our open directory fd instead.
        return path if len(path) < _MAX_UNIX_PATH else f"/proc/self/fd/{self._dir_fd}/{name}"

    def start(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        self._dir_fd = os.open(self.folder, os.O_RDONLY)
        self._recv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._recv.bind(self._address(self._name))
        self._recv.setblocking(False)
        self._send = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._recv.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        assert self._recv is not None
        while True:
            try:
                message = self._recv.recv(_MAX_DATAGRAM + 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._on_wake(Wake.decode(message))

    def _current_peers(self) -> list[str]:
        # Re-list the folder only when it changed (a process came or went): a stat is far cheaper than a scan.
        mtime = os.stat(self.folder).st_mtime_ns
        if mtime != self._peers_mtime:
            self._peers = [n for n in os.listdir(self.folder) if n.endswith(".sock") and n != self._name]
            self._peers_mtime = mtime
        return self._peers

    def send(self, wake: Wake) -> None:
        """Send ``wake`` to every other process; never blocks, never raises."""
        if self._send is None:
            return
        with self._lock:
            try:
                peers = self._current_peers()
            except OSError:
                return
            messages = wake.encode()
            for name in list(peers):
                self._send_to(name, messages)

    def _send_to(self, name: str, messages: list[bytes]) -> None:
        assert self._send is not None
        for message in messages:
            try:
                self._send.sendto(message, self._address(name))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # its process died without cleaning up
                    os.unlink(os.path.join(self.folder, name))
                self._peers_mtime = -1
                return
            except OSError:  # buffer full (BlockingIOError) or anything else: the peer's fallback poll catches up
                return

    def close(self) -> None:
        if self._recv is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._recv.fileno())
            self._recv.close()
            self._recv = None
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.folder, self._name))
        if self._send is not None:
            with self._lock:
                self._send.close()
                self._send = None
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
