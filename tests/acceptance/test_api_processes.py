"""Process shapes: a job survives ``kill -9`` of ``ingestd serve`` and a restart; two ``ingestd api`` processes and an
``ingestd worker`` on one database; open mode refuses a non-loopback address.

These run on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from server_process import Process, Server, free_port, ingestd, wait_finished


def _events(client: httpx.Client, job_id: str) -> list[dict[str, object]]:
    text = client.get(f"/v1/jobs/{job_id}/events").text
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


@pytest.mark.slow
def test_a_job_survives_kill_9_of_serve_and_a_restart(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = {"items": 8, "seconds": 0.25, "concurrency": 1}
            job = client.post("/v1/pipelines/demo/jobs", json=body).json()
            deadline = time.monotonic() + 20
            while client.get(f"/v1/jobs/{job['id']}").json()["progress"]["done"] < 3:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.05)
            server.kill()  # SIGKILL: no hand-over, the lease must expire
            server.restart()
            done = wait_finished(client, job["id"], timeout=60)
            assert done["status"] == "succeeded", done
            assert done["attempt"] == 2
            assert client.get(f"/v1/jobs/{job['id']}/result").json() == {"ok": list(range(8)), "failed": []}
            started = [e["data"]["key"] for e in _events(client, job["id"]) if e["type"] == "step.started"]
            assert started.count("prepare") == 1  # a checkpointed step never runs twice
            assert started.count("work[0]") == 1
    finally:
        server.stop()


@pytest.mark.slow
def test_two_api_processes_and_a_worker_on_one_database(database_url: str, tmp_path: Path) -> None:
    # Both start at once (each is seconds of imports on a loaded machine), then both must answer.
    api_a = Server(database_url, tmp_path / "api-a.log", command="api", wait=False)
    api_b = Server(database_url, tmp_path / "api-b.log", command="api", wait=False)
    worker = None
    try:
        api_a.wait_ready()
        api_b.wait_ready()
        with httpx.Client(base_url=api_a.url, timeout=30) as a, httpx.Client(base_url=api_b.url, timeout=30) as b:
            job = a.post("/v1/pipelines/demo/jobs", json={"items": 4, "seconds": 0.1}).json()
            assert b.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"  # no worker yet
            with ThreadPoolExecutor(1) as pool:
                # B's event stream is open before the worker starts: it follows, live, what another process writes
                streamed = pool.submit(_events, b, job["id"])
                time.sleep(0.5)
                worker = Process(["worker", "--database", database_url], tmp_path / "worker.log")
                events = streamed.result(timeout=60)
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert events[-1]["type"] == "job.finished" and events[-1]["data"]["status"] == "succeeded"
            waited = b.post(
                "/v1/pipelines/demo/jobs", json={"items": 2, "seconds": 0.05}, headers={"Prefer": "wait=20"}
            )
            assert waited.status_code == 200 and waited.json()["status"] == "succeeded"
            deadline = time.monotonic() + 10  # the worker's first heartbeat comes heartbeat_seconds after it starts
            while (ready := a.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, ready.text
                time.sleep(0.1)
            assert ready.json()["checks"]["workers"]["workers"] == 1
    finally:
        if worker is not None:
            worker.stop()
        api_a.stop()
        api_b.stop()


def test_open_mode_refuses_to_listen_off_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/var/ingestd.db"
    refused = ingestd("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--database", url)
    assert refused.returncode == 2
    assert "keys create" in refused.stderr
