"""Progress the API reports is the truth: the finished-item count within one report interval, an ETA from the
job's own pace, never going backwards when a job resumes elsewhere; a step that fails for good is ``failed``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from api_pipelines import GATED
from api_support import ApiFactory, finished, submit
from workers import FAST_API, running_worker

from ingestd.api.views import pace_eta
from ingestd.settings import Settings


async def _until_done(api: httpx.AsyncClient, job_id: str, done: int, timeout: float = 15.0) -> dict[str, Any]:
    """Poll the job until its progress says ``done`` items (fails after ``timeout`` s, naming what it saw)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = (await api.get(f"/v1/jobs/{job_id}")).json()
        if job["progress"]["done"] == done:
            return job
        assert time.monotonic() < deadline, f"progress stuck at {job['progress']}, expected done={done}"
        await asyncio.sleep(0.02)


async def _finished_items(api: httpx.AsyncClient, job_id: str) -> list[str]:
    store = api.app.state.store  # type: ignore[attr-defined]
    return [e.data["key"] for e in await store.read_events(job_id) if e.type == "step.finished"]


async def test_progress_is_the_finished_item_count_while_a_map_runs(api: httpx.AsyncClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    body = {"items": 4, "open": [0, 1, 2], "seconds": 0.3, "gate": str(gate)}  # three end together, one waits
    job = (await submit(api, "gated", body)).json()
    running = await _until_done(api, job["id"], 3)
    assert running["status"] == "running"
    assert running["progress"]["stage"] == "work" and running["progress"]["total"] == 4
    assert sorted(await _finished_items(api, job["id"])) == ["work[0]", "work[1]", "work[2]"]
    assert running["progress"]["eta_seconds"] > 0  # the job's own pace: 3 items in >= 0.3 s, one left
    gate.touch()
    done = await finished(api, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == {"stage": "work", "done": 4, "total": 4}


async def test_overlapped_maps_show_the_first_until_it_ends(api: httpx.AsyncClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    body = {"items": 4, "open": [0, 1, 2], "gate": str(gate), "overlap": True}  # "after" waits, like structure
    job = (await submit(api, "gated", body)).json()
    running = await _until_done(api, job["id"], 3)
    assert running["progress"] == {"stage": "work", "done": 3, "total": 4, **_eta(running)}
    gate.touch()
    done = await finished(api, job["id"])
    final = done["progress"]  # the map that ended last has the last word (both waited for the gate)
    assert final["stage"] in ("work", "after") and final["done"] == final["total"]
    store = api.app.state.store  # type: ignore[attr-defined]
    shown = [(e.data["stage"], e.data["done"]) for e in await store.read_events(job["id"]) if e.type == "job.progress"]
    assert [stage for stage, _ in shown][: shown.index(("work", 3)) + 1] == ["work"] * (shown.index(("work", 3)) + 1)


def _eta(job: dict[str, Any]) -> dict[str, Any]:
    return {"eta_seconds": job["progress"]["eta_seconds"]} if "eta_seconds" in job["progress"] else {}


async def test_progress_never_goes_back_when_a_job_resumes(
    api_factory: ApiFactory, database_url: str, tmp_path: Path
) -> None:
    api = await api_factory(run_worker=False)
    store = api.app.state.store  # type: ignore[attr-defined]
    settings = Settings(**{"database_url": database_url, **FAST_API})
    gate = tmp_path / "gate"
    job = (await submit(api, "gated", {"items": 4, "open": [0, 1, 2], "gate": str(gate)})).json()
    async with running_worker(store, settings, {"gated": GATED}):
        await _until_done(api, job["id"], 3)
    async with running_worker(store, settings, {"gated": GATED}):  # the job resumes from its checkpoints
        gate.touch()
        await finished(api, job["id"])
    events = await store.read_events(job["id"])
    counts = [e.data["done"] for e in events if e.type == "job.progress"]
    assert counts == sorted(counts) and counts[-1] == 4, counts
    assert [e.type for e in events].count("job.started") == 2


async def test_a_step_that_fails_for_good_is_failed_in_the_timeline(api: httpx.AsyncClient) -> None:
    job = (await submit(api, "gated", {"fail_stage": True})).json()
    done = await finished(api, job["id"])
    assert done["status"] == "failed" and done["error"]["stage"] == "check"
    events = [e for e in await api.app.state.store.read_events(job["id"])]  # type: ignore[attr-defined]
    failed = [e.data for e in events if e.type == "step.failed"]
    assert failed and failed[0]["key"] == "check" and "not audio" in failed[0]["error"]["detail"]
    timeline = (await api.get(f"/v1/jobs/{job['id']}/timeline")).json()
    row = next(r for r in timeline["rows"] if r["key"] == "check")
    assert [s["state"] for s in row["segments"]] == ["failed"]
    assert any("not audio" in m["label"] for m in row["marks"] if m["kind"] == "failed")


def test_the_eta_counts_down_between_two_counts() -> None:
    """16 items of 8 s, 8 at a time: 8 done at 8 s leaves 8 s, so 4 s later 4 s are left (not 12: elapsed * 8/8)."""
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    at = start + timedelta(seconds=8)
    assert pace_eta(start, at, 8, 16, at) == 8.0
    assert pace_eta(start, at, 8, 16, at + timedelta(seconds=4)) == 4.0
    assert pace_eta(start, at, 8, 16, at + timedelta(seconds=9)) is None  # run out: unknown, not 0
    assert pace_eta(start, start, 0, 16, at) is None
