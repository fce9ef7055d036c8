"""W3C trace context across the queue: the submit's ``traceparent`` is stored with the job, and the worker's job
span starts as its child, so one trace runs from the HTTP request through the job's steps.

Parsed and written by OpenTelemetry's ``TraceContextTextMapPropagator`` (no hand parsing): a malformed header is
ignored, as the W3C spec asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def submit_traceparent(headers: Mapping[str, str]) -> str | None:
    """The ``traceparent`` to store with a job submitted by a request with these headers: the current span's
    when the API request is traced (FastAPI instrumentation; its span is already a child of the header), else
    the request's own ``traceparent`` header if valid, else None."""
    current = context.get_current()
    if not trace.get_current_span(current).get_span_context().is_valid:
        current = _PROPAGATOR.extract(headers)  # an invalid or absent header: an empty context
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=current)  # writes nothing for an invalid span context
    return carrier.get("traceparent")


def parent_context(traceparent: str | None) -> context.Context | None:
    """The context a job's span starts in: a child of the stored ``traceparent`` (None: a new trace)."""
    if not traceparent:
        return None
    extracted = _PROPAGATOR.extract({"traceparent": traceparent})
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None
