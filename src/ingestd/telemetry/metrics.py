"""Prometheus metrics.

Two kinds, served together by the API's ``/metrics``:

* **Process metrics** (counters and histograms below) are recorded where the work happens: step durations and
  provider calls in worker processes, submissions in API processes. They live in the process' default registry
  (prometheus_client is process-wide by design). A worker process serves its own with
  ``start_metrics_server`` (``INGESTD_METRICS_PORT``); ``ingestd serve`` runs the worker inside the API
  process, so its ``/metrics`` has both.
* **Fleet metrics** (queue depth, oldest queued age, running jobs, live workers) are read from the store at
  scrape time, so they are right across any number of processes: the numbers an autoscaler scales workers on.
  Every API process reports the same values; aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingestd.models import JSON
from ingestd.store.protocol import JobStore, LimiterStore
from ingestd.telemetry.logs import LOG_CONTEXT

log = logging.getLogger(__name__)

# Buckets from 5 ms (a cached step) to 30 min (an hour of audio on a slow provider).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

JOBS_SUBMITTED = Counter("ingestd_jobs_submitted", "Jobs accepted by this API process.", ["pipeline"])
JOBS_FINISHED = Counter(
    "ingestd_jobs_finished", "Jobs this process moved to a terminal status.", ["pipeline", "status"]
)


def _durations(name: str, documentation: str, labels: list[str]) -> Histogram:
    """A histogram of seconds on the shared duration buckets."""
    return Histogram(name, documentation, labels, buckets=_DURATION_BUCKETS)


JOB_RUNS = _durations(
    "ingestd_job_run_seconds",
    "Wall time of one execution (attempt) of a job, by how it ended.",
    ["pipeline", "outcome"],
)
JOB_QUEUE_WAIT = _durations(
    "ingestd_job_queue_wait_seconds", "Time from submission (or run_at) to the first start.", ["pipeline"]
)
STEP_DURATION = _durations(
    "ingestd_step_duration_seconds",
    "Wall time of a step, retries included; fan-out items count under their map's name.",
    ["pipeline", "stage", "outcome"],
)
STEP_RETRIES = Counter(
    "ingestd_step_retries", "Step attempts that failed transiently and were retried.", ["pipeline", "stage"]
)
PROVIDER_LATENCY = _durations(
    "ingestd_provider_call_seconds", "Latency of provider calls (limiter wait excluded).", ["provider", "outcome"]
)
PROVIDER_ERRORS = Counter("ingestd_provider_errors", "Failed provider calls, by error code.", ["provider", "code"])
LIMITER_WAIT = Histogram(
    "ingestd_limiter_wait_seconds",
    "Time a provider call waited for the fleet-wide limiter (concurrency or rate).",
    ["provider"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
USAGE_TOKENS = Counter("ingestd_usage_tokens", "Model tokens used.", ["pipeline", "provider", "direction"])
USAGE_AUDIO = Counter("ingestd_usage_audio_seconds", "Seconds of audio sent to providers.", ["pipeline", "provider"])
USAGE_CALLS = Counter("ingestd_usage_calls", "Billable provider calls.", ["pipeline", "provider"])
USAGE_COST = Counter(
    "ingestd_usage_cost", "Money spent, from the price table (its currency).", ["pipeline", "provider"]
)

_INDEX = re.compile(r"\[\d+\]")


def stage_of(step_key: str) -> str:
    """The metric label of a step key: fan-out indices dropped (``transcribe[7]`` -> ``transcribe``), so the
    label set stays bounded however many items a job has."""
    return _INDEX.sub("", step_key)


def observe_job_submitted(pipeline: str) -> None:
    """The API accepted a new job (not an idempotent replay)."""
    JOBS_SUBMITTED.labels(pipeline).inc()


def record_usage(provider: str, counters: Mapping[str, float], *, pipeline: str | None = None) -> None:
    """Add a call's usage: ``tokens_in``, ``tokens_out``, ``audio_seconds``, ``calls``, ``cost``; other keys are
    kept on the step but not exported. ``pipeline`` defaults to the current job's."""
    if pipeline is None:
        pipeline = str(LOG_CONTEXT.get().get("pipeline", ""))
    for direction in ("in", "out"):
        tokens = counters.get(f"tokens_{direction}", 0)
        if tokens > 0:
            USAGE_TOKENS.labels(pipeline, provider, direction).inc(tokens)
    for key, metric in (("audio_seconds", USAGE_AUDIO), ("calls", USAGE_CALLS), ("cost", USAGE_COST)):
        value = counters.get(key, 0)
        if value > 0:
            metric.labels(pipeline, provider).inc(value)


# --- fleet metrics, from the store at scrape time -------------------------------------------------------------


@dataclass
class FleetSnapshot:
    """What the store said at scrape time."""

    store_up: bool
    queues: list[JSON] = field(default_factory=list)
    live_workers: list[JSON] = field(default_factory=list)
    limiters: list[JSON] = field(default_factory=list)  # per provider: in_flight, waiting, concurrency


async def fleet_snapshot(store: JobStore, *, live_within_seconds: float) -> FleetSnapshot:
    """Read queue numbers and live workers; a failing store gives ``store_up=False`` rather than an error, so
    the scrape still answers and the ``ingestd_store_up`` alert can fire."""
    try:
        queues = await store.queue_stats()
        workers = await store.live_workers(live_within_seconds)
        limiters = await store.provider_limiter_stats() if isinstance(store, LimiterStore) else []
    except Exception:  # the scrape must answer whatever the store does; the log says why
        log.warning("metrics: the store did not answer", exc_info=True)
        return FleetSnapshot(store_up=False)
    return FleetSnapshot(store_up=True, queues=queues, live_workers=workers, limiters=limiters)


class FleetCollector(Collector):
    """Turns a ``FleetSnapshot`` into gauges; pipelines with nothing queued report 0 rather than vanishing, so
    autoscaler queries never see a gap."""

    def __init__(self, snapshot: FleetSnapshot, pipelines: Sequence[str] = (), providers: Sequence[str] = ()) -> None:
        self.snapshot = snapshot
        self.pipelines = pipelines
        self.providers = providers  # limited providers: reported at 0 when nothing holds or waits for a slot

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ingestd_store_up", "1 when the store answered this scrape.")
        up.add_metric([], 1.0 if self.snapshot.store_up else 0.0)
        yield up
        if not self.snapshot.store_up:
            return
        yield from self._queue_gauges()
        workers = GaugeMetricFamily("ingestd_workers_live", "Worker processes that heartbeat recently.")
        workers.add_metric([], float(len(self.snapshot.live_workers)))
        yield workers
        yield from self._limiter_gauges()

    def _limiter_gauges(self) -> Iterable[Metric]:
        in_flight = GaugeMetricFamily(
            "ingestd_provider_in_flight", "Provider calls holding a fleet-wide slot now.", labels=["provider"]
        )
        waiting = GaugeMetricFamily(
            "ingestd_provider_waiting", "Provider calls waiting for a fleet-wide slot now.", labels=["provider"]
        )
        limit = GaugeMetricFamily(
            "ingestd_provider_concurrency_limit",
            "The adaptive concurrency limit in force (absent when not adaptive).",
            labels=["provider"],
        )
        rows: dict[str, JSON] = {p: {"in_flight": 0, "waiting": 0, "concurrency": None} for p in self.providers}
        rows.update({str(row["provider"]): row for row in self.snapshot.limiters})
        for provider, row in sorted(rows.items()):
            in_flight.add_metric([provider], float(row.get("in_flight") or 0))
            waiting.add_metric([provider], float(row.get("waiting") or 0))
            if row.get("concurrency") is not None:
                limit.add_metric([provider], float(row["concurrency"]))
        return (in_flight, waiting, limit)

    def _queue_gauges(self) -> Iterable[Metric]:
        by_pipeline = {p: {"queued": 0, "running": 0, "oldest_queued_age": 0.0} for p in self.pipelines}
        for row in self.snapshot.queues:
            by_pipeline[str(row["pipeline"])] = row
        jobs = GaugeMetricFamily(
            "ingestd_jobs", "Jobs queued or running now, fleet-wide.", labels=["pipeline", "status"]
        )
        depth = GaugeMetricFamily("ingestd_queue_depth", "Jobs waiting to run, fleet-wide.", labels=["pipeline"])
        oldest = GaugeMetricFamily(
            "ingestd_queue_oldest_age_seconds", "How long the oldest queued job has waited.", labels=["pipeline"]
        )
        for pipeline, row in sorted(by_pipeline.items()):
            jobs.add_metric([pipeline, "queued"], float(row.get("queued") or 0))
            jobs.add_metric([pipeline, "running"], float(row.get("running") or 0))
            depth.add_metric([pipeline], float(row.get("queued") or 0))
            oldest.add_metric([pipeline], float(row.get("oldest_queued_age") or 0.0))
        return (jobs, depth, oldest)


async def render_metrics(
    store: JobStore | None,
    *,
    pipelines: Sequence[str] = (),
    providers: Sequence[str] = (),
    live_within_seconds: float = 60.0,
) -> bytes:
    """The ``/metrics`` body (Prometheus text format 0.0.4): this process' metrics, then the fleet's."""
    body = generate_latest(REGISTRY)
    if store is not None:
        snapshot = await fleet_snapshot(store, live_within_seconds=live_within_seconds)
        fleet = CollectorRegistry(auto_describe=False)
        fleet.register(FleetCollector(snapshot, pipelines, providers))
        body += generate_latest(fleet)
    return body


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> None:
    """Serve this process' metrics on ``http://addr:port/metrics`` (a worker process; a thread, no store)."""
    start_http_server(port, addr=addr)
    log.info("metrics served", extra={"metrics_url": f"http://{addr}:{port}/metrics"})
