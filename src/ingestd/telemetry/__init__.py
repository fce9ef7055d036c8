"""Telemetry: traces (OpenTelemetry), metrics (Prometheus), structured logs, readiness, and the numbers behind
the dashboard.

The engine calls three hooks and nothing else: ``job_span(job)``, ``step_span(key)`` and
``provider_span(provider)`` (see ``ingestd.telemetry.spans``). The limiter reports waits with
``observe_limiter_wait`` (``ingestd.telemetry.current``: it also adds them to the current step), usage goes
through ``record_usage``, the API stores a submit's trace context with ``submit_traceparent`` (the job span
becomes its child), counts submissions with ``observe_job_submitted`` and serves
``render_metrics``. ``configure`` sets logging and tracing up from the settings and the ``OTEL_*`` environment;
tests call ``install_memory_exporter`` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingestd.telemetry.current import (
    JobRun,
    StepRun,
    current_step,
    observe_limiter_wait,
    set_job_status,
    step_retrying,
)
from ingestd.telemetry.logs import configure_logging, log_context
from ingestd.telemetry.metrics import (
    observe_job_submitted,
    record_usage,
    render_metrics,
    start_metrics_server,
)
from ingestd.telemetry.propagation import submit_traceparent
from ingestd.telemetry.spans import current_span, job_span, provider_span, step_span
from ingestd.telemetry.tracing import configure_tracing, install_memory_exporter, shutdown_tracing

if TYPE_CHECKING:
    from ingestd.settings import Settings


def configure(log_format: str = "text", log_level: str = "INFO") -> None:
    """Set logging and tracing up for a server or worker process (called once by the CLI)."""
    configure_logging(log_format, log_level)
    configure_tracing()


def configure_process(settings: Settings, *, worker: bool) -> None:
    """What ``ingestd worker`` / ``serve`` / ``api`` call at start: ``configure`` from the settings (log format
    and level; tracing from ``OTEL_*``), and for a worker with ``metrics_port`` its own ``/metrics`` server (the
    API process serves ``/metrics`` itself). Spans are flushed at exit (``shutdown_tracing`` via ``atexit``)."""
    import atexit

    configure(settings.log_format, settings.log_level)
    atexit.register(shutdown_tracing)
    if worker and settings.metrics_port is not None:
        start_metrics_server(settings.metrics_port, settings.metrics_host)


__all__ = [
    "JobRun",
    "StepRun",
    "configure",
    "configure_logging",
    "configure_process",
    "configure_tracing",
    "current_span",
    "current_step",
    "install_memory_exporter",
    "job_span",
    "log_context",
    "observe_job_submitted",
    "observe_limiter_wait",
    "provider_span",
    "record_usage",
    "render_metrics",
    "set_job_status",
    "shutdown_tracing",
    "start_metrics_server",
    "step_retrying",
    "step_span",
    "submit_traceparent",
]
