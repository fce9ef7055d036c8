"""``POST /v1/jobs/{id}/retry`` (SQLite and PostgreSQL): a partial job retried runs only its failed items and the
step computed from them; a canceled job resumes; a queued or succeeded job cannot be retried (409)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from api_support import ApiFactory, assert_problem, finished, parse_sse, submit

PIPELINES = ["api_pipelines:PIPELINES", "retry_pipelines:PIPELINES"]


async def _events(api: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job, both attempts: one stream goes on past a retried attempt's ``job.finished``."""
    events = parse_sse((await api.get(f"/v1/jobs/{job_id}/events")).text)
    return [{"type": e["event"], "data": json.loads(e["data"])["data"]} for e in events]


async def _started(api: httpx.AsyncClient, job_id: str) -> Counter[str]:
    return Counter(e["data"]["key"] for e in await _events(api, job_id) if e["type"] == "step.started")


async def test_a_partial_job_retried_runs_only_its_failed_items(api_factory: ApiFactory, tmp_path: Path) -> None:
    api = await api_factory(pipeline_modules=PIPELINES)
    marker = tmp_path / "fail-now"
    marker.touch()
    job = (await submit(api, "flaky", {"items": 5, "fail": [1, 3], "marker": str(marker)})).json()
    first = await finished(api, job["id"])
    assert first["status"] == "partial"
    result = (await api.get(f"/v1/jobs/{job['id']}/result")).json()
    assert (result["ok"], result["failed"]) == ([0, 2, 4], [1, 3])
    marker.unlink()
    retried = await api.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert retried.headers["Location"] == f"/v1/jobs/{job['id']}"
    second = await finished(api, job["id"])
    assert second["status"] == "succeeded" and second["attempt"] == first["attempt"] + 1
    result = (await api.get(f"/v1/jobs/{job['id']}/result")).json()
    assert (result["ok"], result["failed"], result.get("failed_items", [])) == ([0, 1, 2, 3, 4], [], [])
    started = await _started(api, job["id"])
    assert started == Counter({"prepare": 1, "work[0]": 1, "work[2]": 1, "work[4]": 1, "work[1]": 2, "work[3]": 2,
                               "collect": 2})  # fmt: skip
    events = await _events(api, job["id"])
    assert [e["data"] for e in events if e["type"] == "job.retried"] == [
        {"was": "partial", "rerun": ["collect", "work[1]", "work[3]"]}
    ]
    finishes = [e["data"]["status"] for e in events if e["type"] == "job.finished"]
    assert finishes == ["partial", "succeeded"] and events[-1]["type"] == "job.finished"


async def test_only_failed_partial_or_canceled_jobs_can_be_retried(api_factory: ApiFactory) -> None:
    api = await api_factory(pipeline_modules=PIPELINES)
    done = (await submit(api, "flaky", {"items": 2})).json()
    assert (await finished(api, done["id"]))["status"] == "succeeded"
    problem = assert_problem(await api.post(f"/v1/jobs/{done['id']}/retry"), 409, "conflict")
    assert "succeeded" in problem["detail"]
    assert_problem(await api.post("/v1/jobs/nope/retry"), 404, "not-found")


async def test_a_canceled_job_retried_resumes_from_its_checkpoints(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False, pipeline_modules=PIPELINES)
    job = (await submit(api, "demo", {"items": 2, "seconds": 0})).json()
    assert (await api.post(f"/v1/jobs/{job['id']}/cancel")).json()["status"] == "canceled"
    again = await api.post(f"/v1/jobs/{job['id']}/retry")
    assert again.status_code == 202 and again.json()["status"] == "queued"
    assert_problem(await api.post(f"/v1/jobs/{job['id']}/retry"), 409, "conflict")  # queued: nothing to retry
