"""A property-based run of the OpenAPI document with schemathesis against ``ingestd api`` over real HTTP:
whatever the generated request (valid, and deliberately invalid), the answer is never a 5xx, every error is
``application/problem+json``, and every answer of the core API (jobs, pipelines, health) has a status, content
type and body the document declares.

Bounded (a few examples per operation and generation mode) so it stays well under a minute; the worker runs
only ``noop`` jobs, so the (possibly huge) demo jobs the fuzzer submits stay queued instead of loading the
machine. schemathesis' own pytest
plugin does not work with this pytest version, so each operation's strategy is driven by hypothesis directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, errors, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks
from server_process import Server

# Per operation and generation mode: 10 in CI (20 took 88 s at load 7); INGESTD_FUZZ_EXAMPLES=200 for a longer run.
EXAMPLES = int(os.environ.get("INGESTD_FUZZ_EXAMPLES", "10"))
# The core API's operations are also checked against their documented statuses, content types and bodies.
CONFORMING = {
    "/healthz",
    "/readyz",
    "/v1/pipelines",
    "/v1/pipelines/{pipeline}",
    "/v1/pipelines/{pipeline}/jobs",
    "/v1/jobs",
    "/v1/jobs/{job_id}",
    "/v1/jobs/{job_id}/result",
    "/v1/jobs/{job_id}/cancel",
    "/v1/jobs/{job_id}/events",
}
CONFORMANCE = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    server = Server(f"sqlite:///{root}/ingestd.db", root / "serve.log", max_upload_bytes=1_000_000, pipelines=["noop"])
    try:
        yield server
    finally:
        server.stop()


def _operations(server: Server) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _check(server: Server, operation: schemathesis.APIOperation, mode: GenerationMode) -> int:
    """Run the examples of one operation; how many requests were made."""
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def no_server_error(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=server.url, timeout=30)
        where = f"{case.method} {case.formatted_path} {case.query} {case.headers}"
        not_ready = case.formatted_path == "/readyz" and response.status_code == 503  # an answer, not an error
        assert response.status_code < 500 or not_ready, f"{where}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"][0].startswith("application/problem+json"), where
        if operation.path in CONFORMING:  # the answer matches what the document says
            case.validate_response(response, checks=CONFORMANCE)

    try:
        no_server_error()
    except errors.Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE  # an operation with nothing to get wrong (no parameters or body)
    return calls


@pytest.mark.slow
def test_the_openapi_document_fuzzed_gives_no_5xx(fuzzed_server: Server) -> None:
    operations = _operations(fuzzed_server)
    assert any(op.path == "/v1/pipelines/{pipeline}/jobs" for op in operations)
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            calls += _check(fuzzed_server, operation, mode)
    assert calls >= 5 * len(operations)  # the run really explored (not every operation has 25 distinct cases)
