"""The hooks the engine calls: one context manager per job execution, step and provider call.

Each hook does the three things at once, so the runner stays free of telemetry code: an OpenTelemetry span (job
→ step → provider call, nested through the current context, which asyncio tasks inherit), Prometheus metrics,
and a structured log line with the timing::

    with telemetry.job_span(job) as run:
        with telemetry.step_span("transcribe[3]") as step:
            async with limiter:                       # the limiter reports its wait itself
                with telemetry.provider_span("deepgram"):
                    answer = await call()
        run.set_status(JobStatus.SUCCEEDED)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ingestd.models import Job, JobStatus, utcnow
from ingestd.telemetry import current, metrics, propagation
from ingestd.telemetry.current import JobRun, StepRun
from ingestd.telemetry.logs import LOG_CONTEXT, log_context
from ingestd.telemetry.tracing import tracer

log = logging.getLogger("ingestd.telemetry")


def _is_cancellation(exc: BaseException) -> bool:
    # JobCanceled (ours) and asyncio.CancelledError are both BaseExceptions that are not errors of the work.
    return not isinstance(exc, Exception)


_TERMINAL = frozenset(s.value for s in JobStatus if s.terminal)  # once, not per job (the engine's hot path)


def _queue_wait_seconds(job: Job, now: datetime) -> float | None:
    if job.attempt != 1:
        return None  # only the first start measures how long the queue made it wait
    started = job.started_at or now
    return max(0.0, (started - max(job.created_at, job.run_at)).total_seconds())


@contextmanager
def job_span(job: Job) -> Iterator[JobRun]:
    """Trace one execution of ``job`` (the root of its steps' spans, itself a child of the submit's
    ``traceparent`` when the job has one) and count how it ended."""
    wait = _queue_wait_seconds(job, utcnow())
    if wait is not None:
        metrics.JOB_QUEUE_WAIT.labels(job.pipeline).observe(wait)
    attributes: dict[str, str | int] = {
        "ingestd.job.id": job.id,
        "ingestd.pipeline": job.pipeline,
        "ingestd.tenant": job.tenant,
        "ingestd.job.attempt": job.attempt,
    }
    started = time.perf_counter()
    with (
        log_context(job_id=job.id, pipeline=job.pipeline, tenant=job.tenant, attempt=job.attempt),
        tracer().start_as_current_span(
            f"job {job.pipeline}",
            context=propagation.parent_context(job.traceparent),  # the submit's trace, if it came with one
            attributes=attributes,
            record_exception=False,
        ) as span,
    ):
        run = JobRun(job, span)
        token = current.CURRENT_JOB.set(run)
        try:
            yield run
        except BaseException as exc:
            run.status = run.status or ("interrupted" if _is_cancellation(exc) else "error")
            if not _is_cancellation(exc):
                span.record_exception(exc)
            raise
        finally:
            current.CURRENT_JOB.reset(token)
            _end_job(run, time.perf_counter() - started)


def _end_job(run: JobRun, seconds: float) -> None:
    status = run.status or "unknown"
    run.span.set_attribute("ingestd.job.outcome", status)
    if status in (JobStatus.FAILED, "error"):
        run.span.set_status(Status(StatusCode.ERROR, status))
    metrics.JOB_RUNS.labels(run.job.pipeline, status).observe(seconds)
    if status in _TERMINAL:
        metrics.JOBS_FINISHED.labels(run.job.pipeline, status).inc()
    extra = {"outcome": status, "duration_ms": round(seconds * 1000, 1)}
    if run.reason:  # one line per job at INFO; a failure at WARNING with its stage and reason
        log.warning("job %s: %s", status, run.reason, extra=extra)
    else:
        log.info("job %s", status, extra=extra)


@contextmanager
def step_span(key: str, **attributes: str | int | float) -> Iterator[StepRun]:
    """Trace one step of the current job (``decode``, ``transcribe[7]``), retries included, log its timing and
    record its duration. Steps restored from a checkpoint are not wrapped: they did no work."""
    stage = metrics.stage_of(key)
    pipeline = str(LOG_CONTEXT.get().get("pipeline", ""))
    span_attrs: dict[str, AttributeValue] = {"ingestd.step.key": key, "ingestd.step.stage": stage, **attributes}
    started = time.perf_counter()
    with (
        log_context(step=key, stage=stage),
        tracer().start_as_current_span(f"step {key}", attributes=span_attrs, record_exception=False) as span,
    ):
        run = StepRun(key, span)
        token = current.CURRENT_STEP.set(run)
        try:
            yield run
        except BaseException as exc:
            run.ok = False
            if not _is_cancellation(exc):
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{current.error_code(exc)}: {exc}"[:500]))
            raise
        finally:
            current.CURRENT_STEP.reset(token)
            seconds = time.perf_counter() - started
            outcome = "ok" if run.ok else "failed"
            metrics.STEP_DURATION.labels(pipeline, stage, outcome).observe(seconds)
            extra = {"outcome": outcome, "duration_ms": round(seconds * 1000, 1), "retries": run.retries}
            if run.limiter_wait_seconds:
                extra["limiter_wait_ms"] = round(run.limiter_wait_seconds * 1000, 1)
            log.debug("step %s %s", key, outcome, extra=extra)  # INGESTD_LOG_LEVEL=DEBUG shows every step


@contextmanager
def provider_span(provider: str, operation: str | None = None) -> Iterator[Span]:
    """Trace one provider call (a child of the current step) and record its latency and errors."""
    name = f"{provider} {operation}" if operation else provider
    attributes: dict[str, AttributeValue] = {
        "ingestd.provider": provider,
        **({"ingestd.provider.operation": operation} if operation else {}),
    }
    started = time.perf_counter()
    outcome = "ok"
    with tracer().start_as_current_span(
        f"call {name}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if _is_cancellation(exc):
                outcome = "canceled"
            else:
                outcome = "error"
                metrics.PROVIDER_ERRORS.labels(provider, current.error_code(exc)).inc()
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{current.error_code(exc)}: {exc}"[:500]))
            raise
        finally:
            metrics.PROVIDER_LATENCY.labels(provider, outcome).observe(time.perf_counter() - started)


def current_span() -> Span:
    """The span work is running in (a provider call, a step, a job, or a no-op)."""
    return trace.get_current_span()
