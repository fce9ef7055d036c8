"""An ``ingestd worker`` process configured the way an operator would: JSON logs (``INGESTD_LOG_FORMAT=json``),
its own ``/metrics`` (``INGESTD_METRICS_PORT``) and spans from the standard ``OTEL_*`` variables."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from workers import free_port

from ingestd.models import NewJob
from ingestd.store.protocol import JobStore


async def test_worker_process_logs_json_serves_metrics_and_exports_spans(store: JobStore, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        INGESTD_LOG_FORMAT="json",
        INGESTD_LOG_LEVEL="DEBUG",  # step lines are DEBUG; INFO has one line per job
        INGESTD_METRICS_PORT=str(port),
        INGESTD_POLL_SECONDS="0.2",
        INGESTD_HEARTBEAT_SECONDS="0.2",
        INGESTD_WEBHOOK_DISPATCH="false",
        OTEL_TRACES_EXPORTER="console",
    )
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingestd.cli", "worker", "--database", store.url, "--worker-id", "telemetry-w"],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        job = (await store.submit(NewJob(pipeline="demo", input={"items": 2, "seconds": 0}))).job
        deadline = time.monotonic() + 60
        while not (current := await store.get_job(job.id)) or not current.terminal:
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            await asyncio.sleep(0.05)
        assert current.status.value == "succeeded"
        async with httpx.AsyncClient() as client:
            scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        proc.terminate()
        proc.wait(30)
    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    finished = [s for s in families["ingestd_jobs_finished"].samples if s.name == "ingestd_jobs_finished_total"]
    assert [(s.labels, s.value) for s in finished] == [({"pipeline": "demo", "status": "succeeded"}, 1.0)]
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    steps = [line for line in lines if line["logger"] == "ingestd.telemetry" and line["msg"].startswith("step ")]
    assert steps and all(s["job_id"] == job.id and "duration_ms" in s for s in steps), steps
    spans = out.read_text()  # the console exporter prints each span as JSON to stdout (flushed at exit)
    assert '"name": "job demo"' in spans and job.id in spans
