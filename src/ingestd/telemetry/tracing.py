"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables.

No exporter is installed unless the environment asks for one (``OTEL_TRACES_EXPORTER``, or an
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); then spans go over OTLP/HTTP. Without a
provider every span is a no-op, so tracing costs nothing when nobody collects it.

ingestd keeps its own ``TracerProvider`` reference instead of reading the global one at each call, so tests can
install an ``InMemorySpanExporter`` without touching the process-wide provider other libraries see.

The SDK (``opentelemetry.sdk``) is imported only once tracing is set up (an exporter configured, or the test
exporter): a process that traces nothing starts without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

TRACER_NAME = "ingestd"


class _Tracing:
    """The provider ingestd traces into (None: tracing off) and the test exporter, if installed."""

    provider: TracerProvider | None = None
    memory_exporter: InMemorySpanExporter | None = None
    global_set: bool = False


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = env.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    return [n.strip().lower() for n in names.split(",") if n.strip() and n.strip().lower() != "none"]


def exporters_from_env(env: Mapping[str, str] | None = None) -> list[SpanExporter]:
    """The span exporters the environment asks for: ``otlp`` (OTLP over HTTP/protobuf) and ``console``."""
    exporters: list[SpanExporter] = []
    for name in _exporter_names(os.environ if env is None else env):
        if name == "otlp":
            # Imported here: the OTLP exporter pulls in protobuf, which nobody needs when tracing is off.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout)
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (use otlp, console or none)")
    return exporters


def _new_provider() -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the sampler comes from
    # OTEL_TRACES_SAMPLER inside TracerProvider.
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ingestd")})
    return TracerProvider(resource=resource)


def configure_tracing(env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Set tracing up from the environment, once per process (the CLI calls it at start).

    Returns the provider, or None when no exporter is configured (tracing stays a no-op).
    """
    exporters = exporters_from_env(env)
    if not exporters:
        return _Tracing.provider
    if _Tracing.provider is None:
        _Tracing.provider = _new_provider()
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    for exporter in exporters:
        _Tracing.provider.add_span_processor(BatchSpanProcessor(exporter))  # reads OTEL_BSP_*
    if not _Tracing.global_set:
        # Also the global provider, so instrumented libraries (httpx, asyncpg) join the same traces.
        trace.set_tracer_provider(_Tracing.provider)
        _Tracing.global_set = True
        instrument_http_clients(_Tracing.provider)
    return _Tracing.provider


def instrument_http_clients(provider: TracerProvider) -> Callable[[], None] | None:
    """Trace outgoing httpx requests (a client span each, and their ``traceparent`` header sent on) when
    ``opentelemetry-instrumentation-httpx`` is installed (the ``otel`` extra); only called once tracing is on.

    Returns how to undo it (tests), or None when the package is not installed."""
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:
        return None
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)

    def undo() -> None:
        instrumentor.uninstrument()

    return undo


def install_memory_exporter() -> InMemorySpanExporter:
    """For tests: collect every finished span in memory. Idempotent; the exporter is cleared on each call."""
    if _Tracing.provider is None:
        _Tracing.provider = _new_provider()
    if _Tracing.memory_exporter is None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        _Tracing.memory_exporter = InMemorySpanExporter()
        _Tracing.provider.add_span_processor(SimpleSpanProcessor(_Tracing.memory_exporter))
    _Tracing.memory_exporter.clear()
    return _Tracing.memory_exporter


def tracer() -> trace.Tracer:
    """The tracer ingestd's spans come from (a no-op tracer while tracing is off)."""
    if _Tracing.provider is None:
        return trace.NoOpTracer()
    return _Tracing.provider.get_tracer(TRACER_NAME)


def shutdown_tracing() -> None:
    """Flush and stop exporters (also done at interpreter exit)."""
    if _Tracing.provider is not None:
        _Tracing.provider.shutdown()
