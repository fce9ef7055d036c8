"""Telemetry and usage through a real worker: traces (job → step → provider call at the simulator), priced
usage on steps, stages and the job (API view), ``/metrics`` in the Prometheus text format, ``/readyz`` red with
the reason. Both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from workers import running_worker, wait_finished

from ingestd import errors, telemetry
from ingestd.api.app import create_app
from ingestd.models import JSON, Job, NewJob
from ingestd.pipeline import Context, Pipeline
from ingestd.providers.registry import Providers, build_providers
from ingestd.settings import Settings
from ingestd.sim.testing import SimulatorURL, provider_settings, running_simulator
from ingestd.store.protocol import JobStore

FAST: dict[str, Any] = {"lease_seconds": 2.0, "heartbeat_seconds": 0.2, "poll_seconds": 0.2, "webhook_dispatch": False}
PRICES = {"openai": {"*": {"per_call": 0.5, "per_1k_tokens_in": 2.0}}}


class Texts(BaseModel):
    texts: list[str]


class Nothing(BaseModel):
    pass


def embed_pipeline(providers: Providers) -> Pipeline:
    async def run(ctx: Context, inp: Texts) -> JSON:
        embedder = providers.embedder

        async def one(index: int, text: str) -> int:
            answer = await ctx.call(embedder.name, lambda: embedder.embed([text]))
            return len(answer.vectors)

        done = await ctx.map("embed", inp.texts, one, concurrency=2)
        return {"embedded": sum(done.values())}

    return Pipeline(name="embed", input_model=Texts, run=run)  # type: ignore[arg-type]


async def always_fails(ctx: Context, _inp: Nothing) -> JSON:
    async def broken() -> None:
        raise errors.PermanentError("the input is unusable")

    await ctx.step("check", broken)
    return {}


FAILING = Pipeline(name="failing", input_model=Nothing, run=always_fails)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[SimulatorURL]:
    with running_simulator({"routes": {"embeddings": {"median_seconds": 0.01, "p95_seconds": 0.01}}}) as url:
        yield url


def settings_for(store: JobStore, sim: str, **overrides: Any) -> Settings:
    fields = {**provider_settings(sim), **FAST, "prices": PRICES, **overrides}
    return Settings(database_url=store.url, **fields)


@asynccontextmanager
async def api(store: JobStore, settings: Settings, pipelines: dict[str, Pipeline]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, store=store, pipelines=pipelines)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_trace_nests_job_step_and_provider_call(store: JobStore, sim: SimulatorURL) -> None:
    exporter = telemetry.install_memory_exporter()
    providers = build_providers(settings_for(store, sim))
    settings = settings_for(store, sim, provider_limits={"openai": {"concurrency": 1}})
    try:
        job = (await store.submit(NewJob(pipeline="embed", input={"texts": ["a b", "c d e"]}))).job
        async with running_worker(store, settings, {"embed": embed_pipeline(providers)}):
            assert (await wait_finished(store, job.id)).status.value == "succeeded"
    finally:
        await providers.aclose()
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == _job_span(exporter, job).trace_id]
    by_id = {s.context.span_id: s for s in spans}
    calls = [s for s in spans if s.name == "call openai"]
    assert len(calls) == 2 == sim.stats()["routes"]["embeddings"]["calls"]
    for call in calls:
        assert call.parent is not None
        step = by_id[call.parent.span_id]
        assert step.name in ("step embed[0]", "step embed[1]")
        assert step.parent is not None and by_id[step.parent.span_id].name == "job embed"


def _job_span(exporter: Any, job: Job) -> Any:
    [span] = [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("ingestd.job.id") == job.id]
    return span.context


async def test_usage_is_priced_per_step_and_totalled_in_the_job_view(store: JobStore, sim: SimulatorURL) -> None:
    providers = build_providers(settings_for(store, sim))
    settings = settings_for(store, sim)
    pipelines = {"embed": embed_pipeline(providers)}
    texts = ["one two three", "four five", "six"]
    try:
        job = (await store.submit(NewJob(pipeline="embed", input={"texts": texts}))).job
        async with running_worker(store, settings, pipelines):
            await wait_finished(store, job.id)
        steps = await store.load_steps(job.id)
        async with api(store, settings, pipelines) as client:
            view = (await client.get(f"/v1/jobs/{job.id}")).json()
    finally:
        await providers.aclose()
    per_step = [steps[f"embed[{i}]"].usage["openai"] for i in range(3)]
    for counters in per_step:  # cost = 0.5 per call + 2.0 per 1k tokens in, from the price table
        assert counters["calls"] == 1 and counters["tokens_in"] > 0
        assert counters["cost"] == pytest.approx(0.5 + counters["tokens_in"] / 1000 * 2.0)
    tokens = sum(c["tokens_in"] for c in per_step)
    usage = view["usage"]
    assert usage["total"]["calls"] == 3 and usage["total"]["tokens_in"] == tokens
    assert usage["total"]["cost"] == pytest.approx(1.5 + tokens / 1000 * 2.0)
    assert usage["stages"]["embed"]["openai"]["calls"] == 3
    assert usage["providers"]["openai"]["cost"] == pytest.approx(usage["total"]["cost"])


async def test_metrics_parse_and_show_queues_steps_providers_and_usage(store: JobStore, sim: SimulatorURL) -> None:
    providers = build_providers(settings_for(store, sim))
    settings = settings_for(store, sim, provider_limits={"openai": {"concurrency": 2}})
    pipelines = {"embed": embed_pipeline(providers)}
    try:
        job = (await store.submit(NewJob(pipeline="embed", input={"texts": ["x y"]}))).job
        async with running_worker(store, settings, pipelines):
            await wait_finished(store, job.id)
        await store.submit(NewJob(pipeline="embed", input={"texts": ["left queued"]}))
        async with api(store, settings, pipelines) as client:
            answer = await client.get("/metrics")
    finally:
        await providers.aclose()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}  # raises on a malformed line

    def value(name: str, **labels: str) -> float:
        samples = [s for f in families.values() for s in f.samples if s.name == name]
        return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("ingestd_queue_depth", pipeline="embed") == 1
    assert value("ingestd_queue_oldest_age_seconds", pipeline="embed") >= 0
    assert value("ingestd_jobs", pipeline="embed", status="queued") == 1
    for histogram in ("ingestd_step_duration_seconds", "ingestd_provider_call_seconds"):
        assert f"{histogram}_bucket" in {s.name for f in families.values() for s in f.samples}, histogram
    assert value("ingestd_provider_call_seconds_count", provider="openai") >= 1
    assert value("ingestd_limiter_wait_seconds_count", provider="openai") >= 1
    assert value("ingestd_usage_calls_total", pipeline="embed", provider="openai") >= 1
    in_flight = [s for s in families["ingestd_provider_in_flight"].samples if s.labels == {"provider": "openai"}]
    assert [s.value for s in in_flight] == [0.0]  # the fleet-wide limiter's slots, all given back


async def test_readyz_turns_red_for_an_old_queue_and_says_which(store: JobStore, sim: SimulatorURL) -> None:
    settings = settings_for(store, sim, ready_max_queue_age_seconds=0.3, ready_require_worker=False)
    pipelines = {"embed": Pipeline(name="embed", input_model=Texts, run=always_fails)}  # type: ignore[arg-type]
    await store.submit(NewJob(pipeline="embed", input={"texts": ["nobody runs me"]}))
    async with api(store, settings, pipelines) as client:
        fresh = (await client.get("/readyz")).json()
        await asyncio.sleep(0.4)
        stale = await client.get("/readyz")
    assert fresh["checks"]["queue_age"]["ok"] is True
    assert stale.status_code == 503
    body = stale.json()
    assert "queue_age" in body["detail"] and body["checks"]["queue_age"]["ok"] is False
    assert (
        "pipeline embed" in body["checks"]["queue_age"]["detail"]
        and "limit 0.3 s" in body["checks"]["queue_age"]["detail"]
    )
    assert body["checks"]["failure_rate"]["ok"] is True
    assert body["checks"]["workers"]["ok"] is True  # INGESTD_READY_REQUIRE_WORKER=false: no worker is fine
    assert body["detail"] == "not ready: queue_age"


async def test_readyz_turns_red_when_a_pipeline_keeps_failing(store: JobStore, sim: SimulatorURL) -> None:
    settings = settings_for(store, sim, ready_failure_min_jobs=3, ready_max_failure_rate=0.5)
    pipelines = {"failing": FAILING}
    jobs = [(await store.submit(NewJob(pipeline="failing", input={}))).job for _ in range(3)]
    async with api(store, settings, pipelines) as client:
        before = (await client.get("/readyz")).json()
        async with running_worker(store, settings, pipelines):
            for job in jobs:
                assert (await wait_finished(store, job.id)).status.value == "failed"
        after = await client.get("/readyz")
    assert before["checks"]["failure_rate"]["ok"] is True
    assert after.status_code == 503
    check = after.json()["checks"]["failure_rate"]
    assert check["ok"] is False and "pipeline failing: 3 of the last 3 jobs failed" in check["detail"]
