"""compose.yaml's commands, run outside Docker the way its services run them: its environment (the database URL
pointed at the local PostgreSQL), in its order: ``ingestd migrate``, the bootstrap key (twice: idempotent),
``ingestd api`` on 0.0.0.0 (allowed because a key exists), two ``ingestd worker`` processes; then a job through
the API with the bootstrap key, and the metric deploy/k8s/keda.yaml scales on, scraped from the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from server_process import Process, free_port, ingestd, wait_finished
from workers import wait_healthy

ROOT = Path(__file__).parent.parent.parent
BOOTSTRAP_KEY = "ik_" + "compose-test-bootstrap-key-0123456789"

pytestmark = pytest.mark.slow


def service(name: str) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return services[name]


def settings_of(name: str, database_url: str, **overrides: str) -> dict[str, str]:
    """The service's ``INGESTD_*`` environment as settings, its database replaced by ``database_url``."""
    env = {**service(name)["environment"], "INGESTD_DATABASE_URL": database_url}
    settings = {k.removeprefix("INGESTD_").lower(): str(v) for k, v in env.items() if k.startswith("INGESTD_")}
    return {**settings, **overrides}


def wait_metrics(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:  # one client: each httpx.get loads the CA bundle (0.1 CPU-s at load)
        while True:
            try:
                return client.get(url).raise_for_status().text
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"{url} never answered"
                time.sleep(0.2)


@pytest.mark.parametrize("backend", ["postgres"])  # compose.yaml runs PostgreSQL
def test_the_compose_services_commands_run_a_job_on_postgres(database_url: str, tmp_path: Path) -> None:
    url = database_url
    migrated = ingestd(*service("migrate")["command"], **settings_of("migrate", url))
    assert migrated.returncode == 0, migrated.stderr
    key_settings = settings_of("bootstrap-key", url, bootstrap_key=BOOTSTRAP_KEY)
    made = [ingestd(*service("bootstrap-key")["command"], **key_settings) for _ in range(2)]
    assert [m.returncode for m in made] == [0, 0], made[0].stderr
    assert made[0].stdout == made[1].stdout and made[0].stdout.startswith("key_")  # the id, never the secret
    assert BOOTSTRAP_KEY not in made[0].stdout + made[0].stderr

    port = free_port()
    api = Process(service("api")["command"], tmp_path / "api.log", **settings_of("api", url, port=str(port)))
    ports = [free_port(), free_port()]
    workers = [
        Process(service("worker")["command"], tmp_path / f"w{i}.log", **settings_of("worker", url, metrics_port=str(p)))
        for i, p in enumerate(ports)
    ]
    try:
        assert api.proc is not None
        wait_healthy(f"http://127.0.0.1:{port}", api.proc, api.log_path)
        headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs").status_code == 401  # keys exist: no open mode
            job = client.post("/v1/pipelines/demo/jobs", json={"items": 6, "seconds": 0.05}).json()
            assert wait_finished(client, job["id"], timeout=60)["status"] == "succeeded"
            scraped = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert "ingestd_queue_depth" in scraped  # what keda.yaml's ScaledObject queries
        live = [s.value for s in scraped["ingestd_workers_live"].samples]
        assert live == [2.0]
        for p in ports:  # each worker serves its own /metrics (INGESTD_METRICS_PORT from compose)
            assert "ingestd_jobs_finished" in wait_metrics(f"http://127.0.0.1:{p}/metrics")
    finally:
        for process in [api, *workers]:
            process.stop()
