"""The protocol methods both backends implement the same way, written once over each backend's primitives.

``submit`` names the new job and turns what the backend's ``_submit`` found (the new row, or the row already
holding the ``Idempotency-Key``) into its outcome; ``list_jobs`` makes a page and its cursor of what ``_job_rows``
selects; ``heartbeat`` asks about each job once and reports as lost what the backend's ``_heartbeat`` did not hold;
``finish`` checks and encodes the outcome (``records.terminal_outcome``) and hands it to the backend's ``_finish``;
``add_api_key`` and ``tenant_for_key`` are the same steps on both (``_insert_api_key``, ``api_key_for_hash``);
``acquire_provider_slots`` takes its options once and hands them to the backend's transaction; ``append_events``
turns what the backend's ``_append_events`` wrote (sequence numbers and times) into events, or ``LeaseLost``. The
store classes list ``SharedMethods`` last among their bases, so a backend's own method always wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestd import errors, keys
from ingestd.models import (
    JSON,
    Event,
    HeartbeatResult,
    JobFilter,
    JobPage,
    JobStatus,
    NewJob,
    SubmitOutcome,
    new_job_id,
)
from ingestd.slots import Plan, SlotLimit, Waiter
from ingestd.store import records

Encoded = tuple[str | None, str | None, str | None]  # result, error, usage as JSON text (None: SQL NULL)
Appended = list[tuple[int, datetime]]  # (seq, at) of each event written, in order; [] if none was


class SharedMethods:
    """A mixin of ``SQLiteJobStore`` and ``PostgresJobStore``."""

    async def _submit(self, new: NewJob, job_id: str) -> tuple[Sequence[Any], bool]:
        """Insert the job as ``job_id`` with its ``job.queued`` event: (its row, True); or, when the tenant used the
        ``Idempotency-Key`` already, (that job's row, False)."""
        raise NotImplementedError

    async def _job_rows(self, flt: JobFilter, cursor: str | None, limit: int) -> Sequence[Sequence[Any]]:
        """Up to ``limit`` rows of the jobs ``flt`` selects after ``cursor``, newest first (``JOB_COLUMNS``)."""
        raise NotImplementedError

    async def _heartbeat(self, worker_id: str, job_ids: list[str], lease_seconds: float) -> tuple[set[str], set[str]]:
        """Extend the leases held, record the worker as alive; (held, cancel requested) among ``job_ids``."""
        raise NotImplementedError

    async def _finish(
        self, job_id: str, worker_id: str, attempt: int | None, status: JobStatus, encoded: Encoded
    ) -> bool:
        raise NotImplementedError

    async def _insert_api_key(self, key: records.NewApiKey) -> None:
        """Insert the key unless its hash is stored already."""
        raise NotImplementedError

    async def api_key_for_hash(self, key_hash: str) -> keys.ApiKey | None:
        raise NotImplementedError

    async def _append_events(
        self, job_id: str, events: Sequence[tuple[str, JSON]], worker_id: str | None, attempt: int | None
    ) -> Appended:
        raise NotImplementedError

    async def _acquire_provider_slots(
        self, provider: str, limit: SlotLimit, waiters: Sequence[Waiter], gone: Sequence[str], lease_seconds: float
    ) -> Plan:
        raise NotImplementedError

    async def submit(self, new: NewJob) -> SubmitOutcome:
        row, created = await self._submit(new, new_job_id())
        job = records.job_from_row(row)
        return SubmitOutcome(job if created else records.idempotent_replay(job, new), created=created)

    async def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        rows = await self._job_rows(flt, cursor, limit + 1)  # one more than a page: is there a next one?
        jobs = [records.job_from_row(r) for r in rows[:limit]]
        return JobPage(jobs, records.encode_cursor(jobs[-1].id) if len(rows) > limit else None)

    async def heartbeat(self, worker_id: str, job_ids: Sequence[str], lease_seconds: float) -> HeartbeatResult:
        ids = list(dict.fromkeys(job_ids))
        held, cancel = await self._heartbeat(worker_id, ids, lease_seconds)
        return HeartbeatResult(lost=frozenset(set(ids) - held), cancel_requested=frozenset(cancel))

    async def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result: JSON | None = None,
        error: JSON | None = None,
        usage: JSON | None = None,
        attempt: int | None = None,
    ) -> bool:
        status, encoded = records.terminal_outcome(status, result, error, usage)
        return await self._finish(job_id, worker_id, attempt, status, encoded)

    async def append_events(
        self,
        job_id: str,
        events: Sequence[tuple[str, JSON]],
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> list[Event]:
        if not events:
            return []
        appended = await self._append_events(job_id, events, worker_id, attempt)
        if not appended and worker_id is not None:
            raise errors.LeaseLost(job_id=job_id, event=events[0][0])
        pairs = zip(appended, events, strict=True)
        return [Event(job_id, seq, etype, data, at) for (seq, at), (etype, data) in pairs]

    async def add_api_key(
        self,
        key_hash: str,
        tenant: str,
        *,
        key_id: str | None = None,
        scopes: Sequence[str] = keys.DEFAULT_SCOPES,
        name: str | None = None,
        expires_at: datetime | None = None,
    ) -> keys.ApiKey:
        new = records.NewApiKey(key_hash, tenant, key_id or keys.new_id(), " ".join(scopes), name, expires_at)
        await self._insert_api_key(new)
        key = await self.api_key_for_hash(key_hash)
        assert key is not None
        return key

    async def acquire_provider_slots(
        self,
        provider: str,
        limit: SlotLimit,
        waiters: Sequence[Waiter],
        *,
        gone: Sequence[str] = (),
        lease_seconds: float,
    ) -> Plan:
        return await self._acquire_provider_slots(provider, limit, waiters, gone, lease_seconds)

    async def tenant_for_key(self, key_hash: str) -> str | None:
        key = await self.api_key_for_hash(key_hash)
        return key.tenant if key is not None and key.state() == "active" else None


__all__ = ["Encoded", "SharedMethods"]
