"""The store contract. Every backend (SQLite, PostgreSQL) implements exactly this; one contract test suite
(``tests/store``) runs against each.

Semantics every backend must honour:

* Every status transition is a compare-and-set: a terminal job never changes again; ``finish`` and
  ``save_step`` of a worker that no longer holds the lease do nothing and say so.
* The fence: every write of a worker for a job (``save_step``, ``append_events`` with ``worker_id``,
  ``set_progress``, ``finish``, ``retry_later``) is conditional, in the same statement, on the job running under
  that worker's lease of that execution (``attempt``, the job's attempt when it was claimed). A worker cut off
  from the store past its lease, whose job was claimed again (by another worker or by itself), has every late
  write refused. Workers always pass ``attempt``; None checks the worker alone (tests, tools).
* ``claim_jobs`` takes queued jobs whose ``run_at`` has come, highest ``priority`` first then oldest, and also
  running jobs whose lease expired (a dead worker's). A job with an ``ordering_key`` is claimable only when no
  other job of its tenant with that key is running (with a live lease) and no such job submitted earlier is still
  queued: same-key jobs of one tenant run one at a time, in submission order (keys are scoped by tenant). An
  expired job whose attempts are used up is failed instead of claimed. Claiming increments ``attempt``
  and appends ``job.started``.
* Events get per-job sequence numbers 1, 2, 3... with no gaps, appended in the same transaction as the state
  change they describe.
* ``wait_for_events`` / ``wait_for_work`` wake promptly when another connection (or process) commits: in
  process and across processes (LISTEN/NOTIFY on PostgreSQL; a wake-up socket next to the SQLite file),
  polling only as a fallback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ingestd import keys
from ingestd.models import (
    JSON,
    Event,
    HeartbeatResult,
    Job,
    JobFilter,
    JobPage,
    JobStatus,
    NewJob,
    Progress,
    Step,
    SubmitOutcome,
    WebhookMessage,
)
from ingestd.slots import Feedback, Plan, SlotLimit, Waiter


@runtime_checkable
class BlobStore(Protocol):
    """Where job input files live: a folder next to the SQLite file, or the database itself on PostgreSQL
    (so workers on other machines can read them)."""

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> tuple[str, int]:
        """Stream ``chunks`` into a new blob; returns (reference, size). Over ``max_size``: InputTooLarge,
        and nothing is left behind."""
        ...

    def open(self, ref: str) -> AsyncIterator[bytes]:
        """Stream a blob's bytes back."""
        ...

    async def local_path(self, ref: str) -> str:
        """A local file path holding the blob (copied to a temporary file when the blob is remote)."""
        ...

    async def delete(self, ref: str) -> None: ...


@runtime_checkable
class JobStore(Protocol):
    """The durable job store. Open with ``ingestd.store.open_store(url)``."""

    url: str
    blobs: BlobStore

    async def close(self) -> None: ...

    async def migrate(self) -> None:
        """Bring the schema to the newest version (Alembic). Safe to run concurrently and repeatedly."""
        ...

    # --- submitting and reading -------------------------------------------------------------
    async def submit(self, new: NewJob) -> SubmitOutcome:
        """Insert a queued job and its ``job.queued`` event in one transaction and wake workers.

        With an ``idempotency_key`` already used by this tenant: the same ``payload_hash`` returns the existing
        job (``created=False``); a different one raises ``IdempotencyConflict``. Safe under concurrency.
        """
        ...

    async def get_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None (also when it belongs to another tenant than ``tenant``)."""
        ...

    async def list_jobs(self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None) -> JobPage:
        """Newest first; ``cursor`` is the opaque ``next_cursor`` of the previous page."""
        ...

    async def count_queued(self, tenant: str) -> int: ...

    async def delete_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Delete a terminal job with its events, steps and blobs. None if absent; JobNotFinished if running."""
        ...

    async def request_cancel(self, job_id: str, tenant: str | None = None) -> Job | None:
        """A queued job becomes ``canceled`` at once; a running one gets ``cancel_requested`` (its worker sees
        it at its next heartbeat); a terminal one is unchanged. Idempotent. None if absent."""
        ...

    # --- workers ----------------------------------------------------------------------------
    async def claim_jobs(
        self, worker_id: str, *, pipelines: Sequence[str] | None, limit: int, lease_seconds: float
    ) -> list[Job]:
        """Claim up to ``limit`` runnable jobs (see the module docstring) with a lease."""
        ...

    async def heartbeat(self, worker_id: str, job_ids: Sequence[str], lease_seconds: float) -> HeartbeatResult:
        """Extend the leases this worker still holds; report the lost ones and those asked to cancel. Also
        records the worker as alive (``live_workers``)."""
        ...

    async def release(self, worker_id: str, job_ids: Sequence[str]) -> None:
        """Give running jobs back (graceful shutdown): queued again at once, the attempt not counted."""
        ...

    async def set_progress(
        self, job_id: str, worker_id: str, progress: Progress, *, attempt: int | None = None
    ) -> None:
        """Record progress and append a ``job.progress`` event (nothing if the lease is not held)."""
        ...

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
        """Move a running job this worker leases to a terminal status, set ``finished_at`` and ``expires_at``,
        append ``job.finished`` (with the status). False (and no change) if the job is not running under this
        worker's lease (of execution ``attempt``, when given: see the module docstring's fence)."""
        ...

    async def retry_later(
        self, job_id: str, worker_id: str, run_at: datetime, error: JSON, *, attempt: int | None = None
    ) -> bool:
        """Put a running job back to ``queued`` until ``run_at`` (a job-level retry). False if not leased."""
        ...

    async def live_workers(self, within_seconds: float) -> list[JSON]:
        """Workers that heartbeat within the window: ``{"id", "last_seen", "jobs"}``."""
        ...

    # --- steps (checkpoints) ---------------------------------------------------------------
    async def load_steps(self, job_id: str) -> dict[str, Step]:
        """Every checkpointed step of a job, by key."""
        ...

    async def save_step(
        self, step: Step, worker_id: str, events: Sequence[tuple[str, JSON]] = (), *, attempt: int | None = None
    ) -> Step:
        """Checkpoint a finished step, with ``events`` appended in the same transaction. The first checkpoint of
        a key wins: if one exists already it is returned unchanged (and the events are not appended); otherwise
        only the lease holder may write it (``LeaseLost``)."""
        ...

    # --- events ------------------------------------------------------------------------------
    async def append_events(
        self,
        job_id: str,
        events: Sequence[tuple[str, JSON]],
        *,
        worker_id: str | None = None,
        attempt: int | None = None,
    ) -> list[Event]:
        """Append events with the next sequence numbers ([] if the job is gone). With ``worker_id`` (a worker's
        own events), only while the job runs under that lease (and ``attempt``): else ``LeaseLost``."""
        ...

    async def read_events(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]: ...

    async def wait_for_events(self, job_id: str, after: int, timeout: float) -> bool:
        """Return True as soon as the job has an event with ``seq > after`` (at once if it already has), False on
        timeout."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """Sleep until a job may have become claimable (a submit, a release, a finish of an ordering-key
        predecessor) or ``timeout`` passes."""
        ...

    # --- housekeeping and numbers ----------------------------------------------------------
    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete terminal jobs past ``expires_at`` with their blobs; returns how many."""
        ...

    async def queue_stats(self) -> list[JSON]:
        """Per pipeline: ``{"pipeline", "queued", "running", "oldest_queued_age"}``."""
        ...

    async def recent_durations(self, pipeline: str, limit: int = 50) -> list[tuple[float, float]]:
        """(units, seconds from start to finish) of recently succeeded jobs, for ETAs."""
        ...

    async def retry_job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """Requeue a failed, partial or canceled job, dropping the checkpoints ``retry_plan`` names (failed steps
        and what was computed from them) with a ``job.retried`` event; ``Conflict`` for a job in another status,
        None when there is no such job (of ``tenant``)."""
        ...

    # --- API keys (ingestd.keys) ------------------------------------------------------------------
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
        """Store a key by its secret's hash (the same hash again changes nothing); the stored key."""
        ...

    async def api_key_for_hash(self, key_hash: str) -> keys.ApiKey | None:
        """The key with this hash, whatever its state."""
        ...

    async def tenant_for_key(self, key_hash: str) -> str | None:
        """The tenant of an active key (None when unknown, revoked or expired)."""
        ...

    async def list_api_keys(self, tenant: str | None = None) -> list[keys.ApiKey]:
        """Every key (of ``tenant``), oldest first, revoked and expired ones too."""
        ...

    async def revoke_api_key(self, key_id: str, tenant: str | None = None) -> keys.ApiKey | None:
        """Revoke a key (idempotent); None when there is no such key (of ``tenant``)."""
        ...

    async def has_api_keys(self) -> bool:
        """True once any key was ever made (a revoked one too: revoking every key does not open the server)."""
        ...


@runtime_checkable
class LimiterStore(Protocol):
    """Fleet-wide provider limits (``ingestd.limits``): slots, waiters and a rate bucket per provider, decided by
    ``ingestd.slots.plan_grants`` under a per-provider lock (``BEGIN IMMEDIATE`` / an advisory lock)."""

    async def acquire_provider_slots(
        self,
        provider: str,
        limit: SlotLimit,
        waiters: Sequence[Waiter],
        *,
        gone: Sequence[str] = (),
        lease_seconds: float,
    ) -> Plan:
        """In one transaction: drop expired slots and waiters and the ``gone`` waiter ids, register (or refresh)
        this process's ``waiters``, and turn those ``plan_grants`` grants into slots leased for
        ``lease_seconds`` (held under the waiter's id)."""
        ...

    async def release_provider_slot(
        self, provider: str, holder_id: str, limit: SlotLimit, feedback: Feedback | None = None
    ) -> None:
        """Free a slot, apply ``feedback`` (adaptive limit, Retry-After pause, extra rate cost), wake waiters."""
        ...

    async def renew_provider_slots(self, holder_ids: Sequence[str], lease_seconds: float) -> None:
        """Extend the leases of slots still held (long calls)."""
        ...

    async def wait_for_provider_slots(self, provider: str, timeout: float) -> None:
        """Sleep until a slot of ``provider`` may have been freed by any process, or ``timeout`` passes."""
        ...

    async def provider_limiter_stats(self) -> list[JSON]:
        """Per provider: ``{"provider", "in_flight", "waiting", "concurrency"}`` (concurrency: the adaptive
        limit in force, or None)."""
        ...


@runtime_checkable
class ReplayStore(Protocol):
    """Seeding a replayed job (``POST /v1/jobs/{id}/replay``) with checkpoints copied from the job it replays."""

    async def seed_steps(self, job_id: str, steps: Sequence[Step]) -> bool:
        """Insert ``steps`` (for ``job_id``) and make the queued job due now, in one transaction; False when the
        job is not queued."""
        ...


@runtime_checkable
class WebhookStore(Protocol):
    """Webhook endpoints (each subscribed to event types), signing secrets (a rotated one keeps signing for an
    overlap), and the outbox that a job's events fill (``ingestd.webhooks``). Event types:
    ``webhook_records.EVENT_TYPES``."""

    async def webhook_secret(self, tenant: str, *, rotate: bool = False) -> str:
        """The tenant's signing secret (``whsec_...``), created on first use; ``rotate`` makes a new one at once
        (no overlap)."""
        ...

    async def rotate_webhook_secret(self, tenant: str, *, overlap_seconds: float) -> JSON:
        """A new secret; the old one keeps signing (next to it) for ``overlap_seconds``:
        ``{"secret", "previous_expires_at"}``."""
        ...

    async def webhook_secret_info(self, tenant: str) -> JSON:
        """``{"secret", "previous_expires_at"}`` (the latter None when only one secret signs)."""
        ...

    async def webhook_signing_secrets(self, tenant: str) -> list[str]:
        """What a message is signed with now: the current secret, then the previous one during its overlap."""
        ...

    async def add_webhook_endpoint(self, tenant: str, url: str, event_types: Sequence[str] = ...) -> JSON:
        """Register a URL that gets the tenant's jobs' events of ``event_types`` (default: the four terminal
        ones): ``{"id", "url", "event_types", "created_at"}``."""
        ...

    async def set_webhook_endpoint_events(
        self, tenant: str, endpoint_id: str, event_types: Sequence[str]
    ) -> JSON | None:
        """Change what an endpoint is subscribed to (None: no such endpoint of the tenant)."""
        ...

    async def list_webhook_endpoints(self, tenant: str) -> list[JSON]: ...

    async def delete_webhook_endpoint(self, tenant: str, endpoint_id: str) -> bool: ...

    async def claim_webhooks(self, worker_id: str, *, limit: int, lease_seconds: float) -> list[WebhookMessage]:
        """Due, undelivered messages, leased to this worker so no other delivers them meanwhile."""
        ...

    async def record_webhook_attempt(
        self, message_id: str, worker_id: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> bool:
        """After an attempt: delivered (``error`` None), retry at ``next_attempt_at``, or given up (an error and
        no next attempt). False if this worker's lease was lost meanwhile."""
        ...

    async def redeliver_webhook(self, tenant: str, message_id: str) -> str:
        """Send a message again (same ``webhook-id``), delivered or given up or not: due now, its retry window
        starting again. ``"queued"``, ``"busy"`` (a dispatcher is sending it now) or ``"missing"``."""
        ...

    async def webhook_deliveries(self, job_id: str) -> list[JSON]:
        """The job's messages: ``{"id", "job_id", "url", "event_type", "attempts", "last_error",
        "next_attempt_at", "delivered_at", "created_at", "redelivered_at", "status"}`` (status: pending,
        delivered, failed)."""
        ...

    async def webhook_delivery(self, tenant: str, message_id: str) -> JSON | None:
        """One message of the tenant, as in ``webhook_deliveries``."""
        ...


__all__ = ["BlobStore", "JobStore", "LimiterStore", "WebhookStore"]
