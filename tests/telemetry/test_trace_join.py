"""Traces that join: a submit's W3C ``traceparent`` is stored with the job, and the worker's job span (so its
step spans) are its children, one trace from the HTTP request through the job's steps. Both databases."""

from __future__ import annotations

from typing import Any

import httpx
from workers import running_worker, wait_finished

from ingestd import telemetry
from ingestd.api.app import create_app
from ingestd.pipelines import demo
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore

FAST: dict[str, Any] = {"lease_seconds": 2.0, "heartbeat_seconds": 0.2, "poll_seconds": 0.2, "webhook_dispatch": False}
PIPELINES = {"demo": demo.DEMO}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


async def _submit(store: JobStore, settings: Settings, headers: dict[str, str]) -> str:
    app = create_app(settings, store=store, pipelines=PIPELINES)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.post("/v1/pipelines/demo/jobs", json={"items": 2, "seconds": 0}, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def test_a_submits_traceparent_is_the_parent_of_its_job_and_steps(store: JobStore) -> None:
    exporter = telemetry.install_memory_exporter()
    settings = Settings(database_url=store.url, **FAST)
    job_id = await _submit(store, settings, {"traceparent": TRACEPARENT})
    assert (stored := await store.get_job(job_id)) is not None and stored.traceparent == TRACEPARENT
    async with running_worker(store, settings, PIPELINES):
        assert (await wait_finished(store, job_id)).status.value == "succeeded"
    spans = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]
    [job] = [s for s in spans if (s.attributes or {}).get("ingestd.job.id") == job_id]
    assert job.name == "job demo" and job.parent is not None and job.parent.is_remote
    assert f"{job.parent.span_id:016x}" == PARENT_ID
    steps = [s for s in spans if s.name.startswith("step ")]
    assert {s.name for s in steps} == {"step prepare", "step work[0]", "step work[1]", "step collect"}
    assert all(s.parent is not None and s.parent.span_id == job.context.span_id for s in steps)


async def test_without_a_valid_traceparent_the_job_starts_its_own_trace(store: JobStore) -> None:
    exporter = telemetry.install_memory_exporter()
    settings = Settings(database_url=store.url, **FAST)
    job_id = await _submit(store, settings, {"traceparent": "00-not-a-trace-01"})  # malformed: ignored
    assert (stored := await store.get_job(job_id)) is not None and stored.traceparent is None
    async with running_worker(store, settings, PIPELINES):
        await wait_finished(store, job_id)
    [job] = [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("ingestd.job.id") == job_id]
    assert job.parent is None
