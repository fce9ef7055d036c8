"""With tracing on, outgoing httpx requests are client spans of the step that makes them, and carry its trace on
to the server in a ``traceparent`` header (``opentelemetry-instrumentation-httpx``, the ``otel`` extra). A real
HTTP server on loopback records what it received."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ingestd.telemetry.tracing import instrument_http_clients


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("traceparent"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_an_httpx_call_is_a_child_span_and_sends_its_traceparent(server: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _Recorder.seen = []
    undo = instrument_http_clients(provider)
    assert undo is not None, "opentelemetry-instrumentation-httpx is part of the dev extras"
    try:
        with provider.get_tracer("test").start_as_current_span("step fetch") as step:
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{server}/audio.wav")).status_code == 204
    finally:
        undo()
    [call] = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert call.parent is not None and call.parent.span_id == step.get_span_context().span_id
    trace_id = f"{step.get_span_context().trace_id:032x}"
    [sent] = _Recorder.seen
    assert sent is not None and sent.startswith(f"00-{trace_id}-{call.context.span_id:016x}-")  # flags: sampled
