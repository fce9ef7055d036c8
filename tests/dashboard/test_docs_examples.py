"""The examples of docs/pipelines/writing.md run as printed: the module, the in-process script, registration
through ``INGESTD_PIPELINE_MODULES`` on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from dashboard_support import DOC, extract_examples, running_server

DOCUMENTS = ["the cat sat", "the cat ran", "   "]


def test_the_in_process_example_prints_what_the_page_says(tmp_path: Path) -> None:
    extract_examples(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "try_wordcount.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["partial [['the', 2], ['cat', 2], ['sat', 1]] ['count[2]']", "usage {'tokens_in': 6.0}"]
    assert "partial [['the', 2], ['cat', 2], ['sat', 1]] ['count[2]']" in DOC.read_text()


def test_a_registered_module_pipeline_runs_behind_the_api(tmp_path: Path) -> None:
    extract_examples(tmp_path)
    env = {"PYTHONPATH": str(tmp_path), "INGESTD_PIPELINE_MODULES": '["wordcount:WORDCOUNT"]'}
    # One client: each httpx.get makes its own, which loads the CA bundle (0.1 CPU-s at load), in the poll too.
    with running_server(tmp_path, **env) as url, httpx.Client(base_url=url, timeout=10) as http:
        listed = http.get("/v1/pipelines").json()["pipelines"]
        assert "wordcount" in {p["name"] for p in listed}
        bad = http.post("/v1/pipelines/wordcount/jobs", json={"documents": []})
        assert bad.status_code == 422
        answer = http.post("/v1/pipelines/wordcount/jobs", json={"documents": DOCUMENTS})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while (job := http.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["status"] == "partial"
        result = http.get(f"/v1/jobs/{job_id}/result").json()
    assert result["top"] == [["the", 2], ["cat", 2], ["sat", 1]]
    assert result["documents"] == 2
    failed = result["failed_items"][0]
    assert failed["key"] == "count[2]"
    assert "document 2 has no words" in failed["error"]["detail"]
