"""The protocol methods both backends implement the same way, written once over each backend's primitives.

``finish`` checks and encodes the outcome (``records.terminal_outcome``) and hands it to the backend's ``_finish``;
``add_api_key`` and ``tenant_for_key`` are the same steps on both (``_insert_api_key``, ``api_key_for_hash``);
``acquire_provider_slots`` takes its options once and hands them to the backend's transaction; ``append_events``
turns what the backend's ``_append_events`` wrote (sequence numbers and times) into events, or ``LeaseLost``.
The store classes list ``SharedMethods`` last among their bases, so a backend's own method always wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ingestd import errors, keys
from ingestd.models import JSON, Event, JobStatus
from ingestd.slots import Plan, SlotLimit, Waiter
from ingestd.store import records

Encoded = tuple[str | None, str | None, str | None]  # result, error, usage as JSON text (None: SQL NULL)
Appended = list[tuple[int, datetime]]  # (seq, at) of each event written, in order; [] if none was


class SharedMethods:
    """A mixin of ``SQLiteJobStore`` and ``PostgresJobStore``."""

    async def _finish(
        self, job_id: str, worker_id: str, attempt: int | None, status: JobStatus, encoded: Encoded
    ) -> bool:
        raise NotImplementedError

    async def _insert_api_key(
        self, key_hash: str, tenant: str, key_id: str, scopes: str, name: str | None, expires_at: datetime | None
    ) -> None:
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
        """Store a key by its hash; the same hash again changes nothing and returns the stored key."""
        await self._insert_api_key(key_hash, tenant, key_id or keys.new_id(), " ".join(scopes), name, expires_at)
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
