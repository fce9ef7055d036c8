"""The SQLite ``JobStore``: the embedded default, and the fast backend of the test suite.

One dedicated thread per store owns the only ``sqlite3`` connection; every protocol method is one whole
transaction run there in one hop (``BEGIN IMMEDIATE`` for writes, so concurrent processes queue on the write lock
instead of failing on upgrade). WAL lets readers in other processes proceed during writes.

Durability trade-off: ``synchronous=NORMAL`` in WAL mode fsyncs at checkpoints, not at every commit. A committed
transaction survives a crash of any process; only a power loss or kernel crash can roll back the last few
transactions (the database stays consistent). That buys roughly 10x on commits. Use PostgreSQL where a power cut
must not lose the last milliseconds of work.

Wake-ups: in process through ``Waiters``; across processes through ``WakeSocket`` datagrams in ``<db>.wake/``;
``PRAGMA data_version`` polled every second as the fallback.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ingestd import errors
from ingestd.batching import Batcher, Outcome
from ingestd.models import (
    JSON,
    Event,
    Job,
    JobFilter,
    JobStatus,
    NewJob,
    Progress,
    Step,
)
from ingestd.store import migrations, records
from ingestd.store import sqlite_jobs as ops
from ingestd.store.files import FileBlobStore
from ingestd.store.protocol import BlobStore
from ingestd.store.records import EVENT_COLUMNS, JOB_COLUMNS
from ingestd.store.shared import Appended, Encoded, SharedMethods
from ingestd.store.sqlite_keys import SQLiteKeys
from ingestd.store.sqlite_limits import SQLiteLimits
from ingestd.store.sqlite_reads import SQLiteReads
from ingestd.store.sqlite_replay import SQLiteReplay
from ingestd.store.sqlite_retry import SQLiteRetry
from ingestd.store.sqlite_webhooks import SQLiteWebhooks
from ingestd.store.wakeup import Waiters, Wake, WakeSocket

T = TypeVar("T")
_FALLBACK_POLL_SECONDS = 1.0
_PURGE_BATCH = 500


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SQLiteJobStore(  # mixins
    SQLiteReads, SQLiteKeys, SQLiteRetry, SQLiteReplay, SQLiteLimits, SQLiteWebhooks, SharedMethods
):
    """A ``JobStore`` on one SQLite file. Create with ``await SQLiteJobStore.open(url, path)``."""

    def __init__(self, url: str, path: str, blob_dir: str | None = None) -> None:
        self.url = url
        self.path = path
        self._files = FileBlobStore(blob_dir or f"{path}.blobs")
        self.blobs: BlobStore = self._files
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingestd-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._waiters = Waiters()
        self._socket = WakeSocket(f"{path}.wake", self._waiters.notify)
        self._poller: asyncio.Task[None] | None = None
        self._data_version = 0
        self._writes = Batcher(self._commit, "ingestd-sqlite-commit")

    @classmethod
    async def open(cls, url: str, path: str, *, blob_dir: str | None = None, migrate: bool = True) -> SQLiteJobStore:
        """Open (and by default migrate) the database at ``path``."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        store = cls(url, path, blob_dir)
        if migrate:
            await store.migrate()
        store._conn = await store._in_thread(_connect, path)
        store._socket.start()
        store._poller = asyncio.create_task(store._poll_fallback(), name="ingestd-sqlite-poll")
        return store

    async def close(self) -> None:
        await self._writes.flush()  # let the writes already asked for commit
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._socket.close()
        if self._conn is not None:
            await self._in_thread(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def migrate(self) -> None:
        """Alembic to head under a file lock (safe when several processes start at once)."""
        await asyncio.to_thread(migrations.upgrade_sqlite, self.path)

    # --- plumbing --------------------------------------------------------------------------
    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _tx(self, batch: list[_Write]) -> list[Outcome]:
        """Run a batch of writes in one transaction (in the database thread), then tell other processes.

        Group commit: writes requested while the previous batch was running share one ``BEGIN IMMEDIATE`` ...
        ``COMMIT`` (one thread hop, one commit). Each runs under its own savepoint, so one that raises (a lease
        lost, an idempotency conflict) is rolled back alone and its caller gets the error; the others commit.
        Returns (ok, result or exception) per write, in order."""
        conn = self._conn
        if conn is None:
            raise errors.StoreUnavailable("the store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = time.time()  # ops.NOW: after the lock, so times follow the order of commits across processes
            try:
                outcomes = (
                    [_run_one(conn, w, now) for w in batch] if len(batch) > 1 else [_run_alone(conn, batch[0], now)]
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        wake = _merged(w.wake for w in batch)
        if wake:
            self._socket.send(wake)
        return outcomes

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, wake, *args)`` in a write transaction, grouped with the writes queued meanwhile."""
        result: T = await self._writes.submit(_Write(fn, args, Wake()))
        return result  # a cancelled caller's write is committed all the same (it may be in flight)

    async def _commit(self, batch: list[_Write]) -> list[Outcome]:
        outcomes = await self._in_thread(self._tx, batch)
        for write, (ok, _) in zip(batch, outcomes, strict=True):
            if ok:
                self._waiters.notify(write.wake)
        return outcomes

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._conn is None:
            raise errors.StoreUnavailable("the store is closed")
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._in_thread(self._query, sql, params)

    async def _poll_fallback(self) -> None:
        # Catches wake-ups whose datagram was lost (a full buffer, a peer that has not listed us yet).
        while True:
            await asyncio.sleep(_FALLBACK_POLL_SECONDS)
            try:
                ((version,),) = await self._read("PRAGMA data_version")
            except errors.StoreError:
                continue
            if version != self._data_version:
                self._data_version = version
                self._waiters.notify_everyone()

    # --- submitting and reading -------------------------------------------------------------
    async def _submit(self, new: NewJob, job_id: str) -> tuple[Sequence[Any], bool]:
        return await self._write(ops.submit, new, job_id, time.time())

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        if tenant is None:
            rows = await self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        else:
            rows = await self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND tenant = ?", (job_id, tenant))
        return next((records.job_from_row(r) for r in rows), None)

    async def _job_rows(self, flt: JobFilter, cursor: str | None, limit: int) -> Sequence[Sequence[Any]]:
        where, params = records.job_filter_sql(flt, cursor, lambda: "?", lambda d: d.timestamp())
        return await self._read(f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id DESC LIMIT ?", (*params, limit))

    async def count_queued(self, tenant: str) -> int:
        ((count,),) = await self._read("SELECT count(*) FROM jobs WHERE tenant = ? AND status = 'queued'", (tenant,))
        return int(count)

    async def delete_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        row = await self._write(ops.delete_job, job_id, tenant)
        if row is None:
            return None
        job = records.job_from_row(row)
        await asyncio.to_thread(self._files.delete_now, [f.blob for f in job.files])
        return job

    async def request_cancel(self, job_id: str, tenant: str | None = None) -> Job | None:
        row = await self._write(ops.request_cancel, job_id, tenant, ops.NOW)
        return records.job_from_row(row) if row is not None else None

    # --- workers ----------------------------------------------------------------------------
    async def claim_jobs(
        self, worker_id: str, *, pipelines: Sequence[str] | None, limit: int, lease_seconds: float
    ) -> list[Job]:
        rows = await self._write(ops.claim, worker_id, pipelines, limit, lease_seconds, ops.NOW)
        return [records.job_from_row(r) for r in rows]

    async def _heartbeat(self, worker_id: str, job_ids: list[str], lease_seconds: float) -> tuple[set[str], set[str]]:
        return await self._write(ops.heartbeat, worker_id, job_ids, lease_seconds, ops.NOW)

    async def release(self, worker_id: str, job_ids: Sequence[str]) -> None:
        await self._write(ops.release, worker_id, list(job_ids), ops.NOW)

    async def set_progress(
        self, job_id: str, worker_id: str, progress: Progress, *, attempt: int | None = None
    ) -> None:
        await self._write(ops.set_progress, job_id, ops.Lease(worker_id, attempt), progress, ops.NOW)

    async def _finish(
        self, job_id: str, worker_id: str, attempt: int | None, status: JobStatus, encoded: Encoded
    ) -> bool:
        return await self._write(ops.finish, job_id, ops.Lease(worker_id, attempt), status, encoded, ops.NOW)

    async def retry_later(
        self, job_id: str, worker_id: str, run_at: datetime, error: JSON, *, attempt: int | None = None
    ) -> bool:
        lease = ops.Lease(worker_id, attempt)
        return await self._write(ops.retry_later, job_id, lease, run_at.timestamp(), error, ops.NOW)

    # --- events ------------------------------------------------------------------------------
    async def _append_events(
        self, job_id: str, events: Sequence[tuple[str, JSON]], worker_id: str | None, attempt: int | None
    ) -> Appended:
        lease = None if worker_id is None else ops.Lease(worker_id, attempt)
        last, now = await self._write(_append_events, job_id, list(events), ops.NOW, lease)
        at = records.as_datetime(now)
        assert at is not None
        return [(last - len(events) + 1 + i, at) for i in range(len(events))] if last else []

    async def read_events(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (job_id, after, limit),
        )
        return [records.event_from_row(r) for r in rows]

    async def _last_seq(self, job_id: str) -> int:
        rows = await self._read("SELECT last_seq FROM jobs WHERE id = ?", (job_id,))
        return next((int(last_seq) for (last_seq,) in rows), 0)

    async def wait_for_events(self, job_id: str, after: int, timeout: float) -> bool:
        return await self._waiters.wait_for_events(job_id, after, timeout, self._last_seq, _FALLBACK_POLL_SECONDS)

    async def wait_for_work(self, timeout: float) -> None:
        await self._waiters.sleep_for_work(timeout)

    # --- housekeeping ----------------------------------------------------------------------------
    async def purge_expired(self, now: datetime | None = None) -> int:
        when = now.timestamp() if now is not None else time.time()
        purged = 0
        while True:
            files = await self._write(ops.purge_expired, when, _PURGE_BATCH)
            refs = [f.blob for encoded in files for f in records.decode_files(encoded)]
            await asyncio.to_thread(self._files.delete_now, refs)
            purged += len(files)
            if len(files) < _PURGE_BATCH:
                return purged

    async def load_steps(self, job_id: str) -> dict[str, Step]:
        rows = await self._read(f"SELECT {records.STEP_COLUMNS} FROM steps WHERE job_id = ?", (job_id,))
        steps = (records.step_from_row(r) for r in rows)
        return {step.key: step for step in steps}

    async def save_step(
        self, step: Step, worker_id: str, events: Sequence[tuple[str, JSON]] = (), *, attempt: int | None = None
    ) -> Step:
        row = await self._write(_save_step, step, ops.Lease(worker_id, attempt), list(events), ops.NOW)
        return records.step_from_row(row)


@dataclass
class _Write:
    """One write waiting for a group commit: ``fn(conn, wake, *args)``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    wake: Wake

    def run(self, conn: sqlite3.Connection, now: float) -> Any:
        """``fn`` with the transaction's time in place of ``ops.NOW``."""
        return self.fn(conn, self.wake, *(now if arg is ops.NOW else arg for arg in self.args))


def _append_events(
    conn: sqlite3.Connection,
    wake: Wake,
    job_id: str,
    events: list[tuple[str, JSON]],
    now: float,
    lease: ops.Lease | None,
) -> tuple[int, float]:
    """``ops.append_events`` and the transaction's time it wrote."""
    return ops.append_events(conn, wake, job_id, events, now, lease), now


def _run_alone(conn: sqlite3.Connection, write: _Write, now: float) -> Outcome:
    """The only write of its transaction: no savepoint needed, an error rolls the whole transaction back."""
    return True, write.run(conn, now)


def _run_one(conn: sqlite3.Connection, write: _Write, now: float) -> Outcome:
    """One write of a group, under a savepoint: if it raises, only its own changes are undone."""
    conn.execute("SAVEPOINT w")
    try:
        value = write.run(conn, now)
    except Exception as exc:
        conn.execute("ROLLBACK TO w")
        conn.execute("RELEASE w")
        write.wake.work, write.wake.jobs = False, []
        return False, _translate(exc) if isinstance(exc, sqlite3.Error) else exc
    conn.execute("RELEASE w")
    return True, value


def _merged(wakes: Iterable[Wake]) -> Wake:
    merged = Wake()
    for wake in wakes:
        merged.work = merged.work or wake.work
        merged.jobs.extend(wake.jobs)
    return merged


def _save_step(
    conn: sqlite3.Connection,
    wake: Wake,
    step: Step,
    lease: ops.Lease,
    events: list[tuple[str, JSON]],
    now: float,
) -> tuple[Any, ...]:
    """First write wins; only the holder of the lease (worker, attempt) may write the first."""
    existing = conn.execute(
        f"SELECT {records.STEP_COLUMNS} FROM steps WHERE job_id = ? AND key = ?", (step.job_id, step.key)
    ).fetchone()
    if existing is not None:
        return tuple(existing)
    leased = conn.execute(f"SELECT 1 FROM jobs WHERE id = ? AND {ops.FENCE}", (step.job_id, *lease.params)).fetchone()
    if leased is None:
        raise errors.LeaseLost(job_id=step.job_id, step=step.key)
    row = records.step_row(step, lambda at: at.timestamp())
    conn.execute(f"INSERT INTO steps ({records.STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    ops.append_events(conn, wake, step.job_id, events, now)
    return row


# Result codes of a full disk or a failing device: the store cannot take writes now (503, retried later).
_UNAVAILABLE_CODES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")


def _translate(exc: sqlite3.Error) -> errors.StoreError:
    """A driver error as ``ingestd.errors``: a refused value is ``StoreRejected``, a full disk or a broken file
    ``StoreUnavailable``, anything else (a busy database) a plain, transient ``StoreError``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(_UNAVAILABLE_CODES) or "unable to open" in str(exc):
        return errors.StoreUnavailable(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError):
        return errors.StoreRejected(f"sqlite: {exc}")
    return errors.StoreError(f"sqlite: {exc}")
