"""The domain: jobs, their stored files, steps (checkpoints) and events. Frozen dataclasses, no I/O."""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELED})


class EventType(enum.StrEnum):
    JOB_QUEUED = "job.queued"
    JOB_STARTED = "job.started"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    STEP_RETRYING = "step.retrying"
    STEP_FAILED = "step.failed"
    ITEM_FAILED = "item.failed"
    JOB_PROGRESS = "job.progress"
    JOB_CANCEL_REQUESTED = "job.cancel_requested"
    JOB_RELEASED = "job.released"
    JOB_FINISHED = "job.finished"


def utcnow() -> datetime:
    return datetime.now(UTC)


_last_ms = 0
_seq = 0


def new_job_id() -> str:
    """A time-sortable id: 48-bit milliseconds + 16-bit counter + 32 random bits, as 26 hex-ish chars.

    Lexicographic order equals creation order within one process (ids from different processes in the same
    millisecond order arbitrarily), which is what cursor pagination needs.
    """
    global _last_ms, _seq
    ms = int(time.time() * 1000)
    if ms == _last_ms:
        _seq += 1
    else:
        _last_ms, _seq = ms, 0
    return f"{ms:012x}{_seq & 0xFFFF:04x}{os.urandom(4).hex()}"


@dataclass(frozen=True)
class StoredFile:
    """A file given with a job, stored durably before the job became visible."""

    name: str  # the form field / original file name
    blob: str  # the blob store's reference
    size: int
    content_type: str = "application/octet-stream"
    meta: JSON = field(default_factory=dict)  # e.g. {"captured_at": "...", "sample_rate": 16000}


@dataclass(frozen=True)
class Progress:
    stage: str | None = None
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class NewJob:
    """What a client submits."""

    pipeline: str
    input: JSON
    tenant: str = "default"
    files: tuple[StoredFile, ...] = ()
    priority: int = 0  # higher runs first
    run_at: datetime | None = None
    ordering_key: str | None = None
    idempotency_key: str | None = None
    payload_hash: str | None = None  # hash of (pipeline, input, files) for idempotency comparison
    max_attempts: int = 5
    deadline_seconds: float | None = None  # from the first start; past it the job fails
    retention_seconds: float = 7 * 24 * 3600  # kept this long after it finished
    webhook_url: str | None = None
    units: float = 0.0  # size of the input in the pipeline's unit (audio seconds, messages), for ETAs
    traceparent: str | None = None  # W3C trace context of the submit: the job's spans are its children


@dataclass(frozen=True)
class Job:
    id: str
    tenant: str
    pipeline: str
    status: JobStatus
    input: JSON
    files: tuple[StoredFile, ...]
    progress: Progress
    result: JSON | None
    error: JSON | None  # RFC 9457 members
    attempt: int
    max_attempts: int
    priority: int
    run_at: datetime
    ordering_key: str | None
    idempotency_key: str | None
    payload_hash: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    expires_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    deadline_at: datetime | None
    usage: JSON
    webhook_url: str | None
    units: float
    traceparent: str | None = None  # W3C trace context of the submit (the parent of the job's spans)

    @property
    def terminal(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True)
class SubmitOutcome:
    job: Job
    created: bool  # False when an idempotent replay returned the existing job


@dataclass(frozen=True)
class Step:
    """A finished step's checkpoint: its key (``decode``, ``transcribe[7]``) and stored output."""

    job_id: str
    key: str
    ok: bool  # False: it failed for good (a failed fan-out item); the error says why
    output: Any
    error: JSON | None
    attempts: int
    started_at: datetime
    finished_at: datetime
    usage: JSON = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    job_id: str
    seq: int  # 1, 2, 3... per job, no gaps
    type: str
    data: JSON
    at: datetime


@dataclass(frozen=True)
class HeartbeatResult:
    lost: frozenset[str]  # jobs whose lease this worker no longer holds: stop working on them
    cancel_requested: frozenset[str]  # jobs whose cancellation was requested


@dataclass(frozen=True)
class JobFilter:
    tenant: str | None = None
    pipeline: str | None = None
    status: JobStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class WebhookMessage:
    """One notification in the webhook outbox, to one URL. ``id`` is the Standard Webhooks ``webhook-id``: the
    same on every retry, so a receiver can drop duplicates."""

    id: str
    job_id: str
    tenant: str
    url: str
    event_type: str  # "job.succeeded", "job.failed"...
    payload: JSON  # the body: {"type", "timestamp", "data"}
    attempts: int  # attempts made before this one
    created_at: datetime
