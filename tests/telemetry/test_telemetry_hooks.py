"""The hooks on their own: span nesting, metrics, JSON log lines (no store, no I/O)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from ingestd import telemetry
from ingestd.models import Job, JobStatus, Progress, utcnow
from ingestd.telemetry import logs, tracing


def make_job(**fields: object) -> Job:
    now = utcnow()
    base: dict[str, object] = dict(
        id="job1", tenant="acme", pipeline="demo", status=JobStatus.RUNNING, input={}, files=(), progress=Progress(),
        result=None, error=None, attempt=1, max_attempts=5, priority=0, run_at=now - timedelta(seconds=3),
        ordering_key=None, idempotency_key=None, payload_hash=None, created_at=now - timedelta(seconds=3),
        started_at=now, finished_at=None, updated_at=now, expires_at=None, lease_owner="w1",
        lease_expires_at=None, cancel_requested=False, deadline_at=None, usage={}, webhook_url=None, units=1.0,
    )  # fmt: skip
    base.update(fields)
    return Job(**base)  # type: ignore[arg-type]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The ``ingestd`` loggers write JSON lines into a buffer; put back as they were afterwards."""
    logger = logging.getLogger("ingestd")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    handler = logs.configure_logging("json", "INFO")
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


async def test_job_step_and_call_spans_nest_across_tasks() -> None:
    exporter = telemetry.install_memory_exporter()

    async def item(i: int) -> None:
        with telemetry.step_span(f"work[{i}]"), telemetry.provider_span("llm", "chat"):
            await asyncio.sleep(0)

    with telemetry.job_span(make_job()) as run:
        with telemetry.step_span("prepare"):
            pass
        # map items run in their own tasks: the spans must still hang under the job
        await asyncio.gather(item(0), item(1))
        run.set_status(JobStatus.SUCCEEDED)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    job = spans["job demo"]
    assert job.parent is None
    assert job.attributes is not None and job.attributes["ingestd.job.id"] == "job1"
    for key in ("prepare", "work[0]", "work[1]"):
        assert spans[f"step {key}"].parent is not None
        assert spans[f"step {key}"].parent.span_id == job.context.span_id
    calls = [s for s in exporter.get_finished_spans() if s.name == "call llm chat"]
    assert len(calls) == 2
    step_ids = {spans["step work[0]"].context.span_id, spans["step work[1]"].context.span_id}
    assert {c.parent.span_id for c in calls if c.parent} == step_ids
    assert all(c.context.trace_id == job.context.trace_id for c in calls)


def test_step_metrics_and_retries_use_the_stage_not_the_item() -> None:
    before = sample("ingestd_step_duration_seconds_count", pipeline="demo", stage="work", outcome="ok")
    retries = sample("ingestd_step_retries_total", pipeline="demo", stage="work")
    with telemetry.job_span(make_job()) as run:
        for i in range(3):
            with telemetry.step_span(f"work[{i}]") as step:
                step.retry(1, TimeoutError("slow"), 0.1)
        run.set_status("succeeded")
    assert sample("ingestd_step_duration_seconds_count", pipeline="demo", stage="work", outcome="ok") == before + 3
    assert sample("ingestd_step_retries_total", pipeline="demo", stage="work") == retries + 3
    assert sample("ingestd_jobs_finished_total", pipeline="demo", status="succeeded") >= 1


def test_failed_provider_call_counts_an_error_and_marks_the_span() -> None:
    exporter = telemetry.install_memory_exporter()
    errors_before = sample("ingestd_provider_errors_total", provider="stt", code="TimeoutError")
    with pytest.raises(TimeoutError), telemetry.provider_span("stt"):
        raise TimeoutError("took too long")
    assert sample("ingestd_provider_errors_total", provider="stt", code="TimeoutError") == errors_before + 1
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok


def test_limiter_wait_and_usage_counters() -> None:
    waits = sample("ingestd_limiter_wait_seconds_count", provider="deepgram")
    tokens = sample("ingestd_usage_tokens_total", pipeline="memory", provider="llm", direction="in")
    telemetry.observe_limiter_wait("deepgram", 0.25)
    telemetry.record_usage("llm", {"tokens_in": 120, "tokens_out": 30, "cost": 0.01}, pipeline="memory")
    assert sample("ingestd_limiter_wait_seconds_count", provider="deepgram") == waits + 1
    assert sample("ingestd_usage_tokens_total", pipeline="memory", provider="llm", direction="in") == tokens + 120


def test_each_step_logs_one_json_line_with_its_timing(json_logs: io.StringIO) -> None:
    logging.getLogger("ingestd").setLevel(logging.DEBUG)  # step lines are DEBUG (the fixture restores the level)
    telemetry.install_memory_exporter()
    with telemetry.job_span(make_job()) as run:
        with telemetry.step_span("decode"):
            logging.getLogger("ingestd.pipelines.demo").info("decoding")
        run.set_status("succeeded")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    inside, step, job = lines
    assert inside["msg"] == "decoding" and inside["step"] == "decode" and inside["job_id"] == "job1"
    assert step["msg"] == "step decode ok"
    assert step["job_id"] == "job1" and step["pipeline"] == "demo" and step["stage"] == "decode"
    assert step["duration_ms"] >= 0 and len(step["trace_id"]) == 32
    assert job["outcome"] == "succeeded" and "step" not in job


def test_text_format_keeps_the_fields() -> None:
    record = logging.LogRecord("ingestd.x", logging.INFO, __file__, 1, "step %s ok", ("decode",), None)
    record.job_id = "job1"
    assert logs.TextFormatter().format(record).endswith("step decode ok job_id=job1")


def test_exporters_follow_the_otel_variables() -> None:
    assert tracing.exporters_from_env({}) == []
    assert tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    (otlp,) = tracing.exporters_from_env(endpoint)
    assert type(otlp).__name__ == "OTLPSpanExporter"
    assert tracing.exporters_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []
    with pytest.raises(ValueError, match="unsupported exporter"):
        tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_info_says_one_line_per_job_and_a_failure_at_warning_with_its_reason(json_logs: io.StringIO) -> None:
    telemetry.install_memory_exporter()
    for status, reason in (("succeeded", None), ("failed", "stage decode: PermanentError: not audio")):
        with telemetry.job_span(make_job()):
            with telemetry.step_span("decode"):
                pass
            telemetry.set_job_status(status, reason)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert [(line["level"], line["msg"]) for line in lines] == [
        ("info", "job succeeded"),
        ("warning", "job failed: stage decode: PermanentError: not audio"),
    ]
