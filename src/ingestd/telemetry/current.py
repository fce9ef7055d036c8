"""The job execution and the step running in this task, and what a step accumulates while it runs.

Context variables (asyncio tasks inherit them, so map items and the tasks a step starts see their step) set by
``spans.job_span`` / ``spans.step_span``. This module sits under ``spans`` and over ``metrics``: code that only
needs the current step (the limiter reporting a wait) imports it without importing the hooks.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from ingestd.models import Job, JobStatus
from ingestd.telemetry import metrics
from ingestd.telemetry.logs import LOG_CONTEXT


def error_code(exc: BaseException) -> str:
    """A bounded label for an error: the ingestd ``code`` when it has one, else the class name."""
    return str(getattr(exc, "code", None) or type(exc).__name__)


@dataclass
class JobRun:
    """One execution of a job, as ``job_span`` yields it."""

    job: Job
    span: Span
    status: str | None = None  # what the runner says the run ended as (a JobStatus, or "retry", "released")
    reason: str | None = None  # why it failed: "stage: reason", logged at WARNING

    def set_status(self, status: JobStatus | str, reason: str | None = None) -> None:
        """Say how this execution ended: a terminal status, or ``retry`` / ``released`` / ``lost``."""
        self.status = str(status)
        self.reason = reason


@dataclass
class StepRun:
    """One step, as ``step_span`` yields it."""

    key: str
    span: Span
    retries: int = 0
    ok: bool = True
    limiter_wait_seconds: float = 0.0  # waits of its provider calls for the fleet-wide limiter
    attrs: dict[str, object] = field(default_factory=dict)

    def retry(self, attempt: int, error: BaseException | str, delay: float) -> None:
        """Attempt ``attempt`` failed transiently; the next starts after ``delay`` seconds."""
        self.retries += 1
        detail = error if isinstance(error, str) else f"{error_code(error)}: {error}"
        self.span.add_event("retry", {"attempt": attempt, "error": detail[:500], "delay_s": delay})
        ctx = LOG_CONTEXT.get()
        metrics.STEP_RETRIES.labels(str(ctx.get("pipeline", "")), metrics.stage_of(self.key)).inc()

    def failed(self, error: BaseException | str) -> None:
        """The step failed for good without raising (a fan-out item recorded as failed)."""
        self.ok = False
        self.span.set_status(Status(StatusCode.ERROR, str(error)[:500]))


# The job execution and the step running in this task (map items and tasks a step starts inherit them).
CURRENT_JOB: ContextVar[JobRun | None] = ContextVar("ingestd_job_run", default=None)
CURRENT_STEP: ContextVar[StepRun | None] = ContextVar("ingestd_step_run", default=None)


def current_step() -> StepRun | None:
    """The step running in this task, if any."""
    return CURRENT_STEP.get()


def set_job_status(status: JobStatus | str, reason: str | None = None) -> None:
    """Say how the current job execution ended (same as ``JobRun.set_status``, for code without the handle)."""
    run = CURRENT_JOB.get()
    if run is not None:
        run.set_status(status, reason)


def step_retrying(attempt: int, error: BaseException | str, delay: float) -> None:
    """The current step's attempt failed transiently (same as ``StepRun.retry``)."""
    run = CURRENT_STEP.get()
    if run is not None:
        run.retry(attempt, error, delay)


def observe_limiter_wait(provider: str, seconds: float) -> None:
    """A provider call waited ``seconds`` for its limiter (called by ``ingestd.limits``, also for 0 s waits).

    Also adds the wait to the current step (its waterfall entry) and marks it on the current span (the step or
    call that waited), where trace viewers show it."""
    metrics.LIMITER_WAIT.labels(provider).observe(max(0.0, seconds))
    step = CURRENT_STEP.get()
    if step is not None:
        step.limiter_wait_seconds += max(0.0, seconds)
    if seconds > 0:
        trace.get_current_span().add_event("limiter.wait", {"ingestd.provider": provider, "wait_s": seconds})
