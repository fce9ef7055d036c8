"""Delayed jobs (SQLite and PostgreSQL): ``delay_seconds`` or ``run_at`` on the submit; the job is stored at once
and never starts before its time; bad combinations are 422 problems naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api_support import ApiFactory, assert_problem, finished, submit


async def test_a_delayed_job_does_not_start_early(api_factory: ApiFactory) -> None:
    api = await api_factory()
    later = await api.post("/v1/pipelines/demo/jobs", params={"delay_seconds": 3600}, json={"items": 1})
    assert later.status_code == 202 and later.json()["status"] == "queued"
    in_a_second = (await submit(api, "demo", {"items": 1, "seconds": 0}, params={"delay_seconds": 1})).json()
    now = (await submit(api, "demo", {"items": 1, "seconds": 0})).json()  # submitted last, runs first
    assert (await finished(api, now["id"]))["status"] == "succeeded"
    soon = await finished(api, in_a_second["id"])
    assert soon["status"] == "succeeded"
    waited = datetime.fromisoformat(soon["started_at"]) - datetime.fromisoformat(soon["created_at"])
    assert waited >= timedelta(seconds=0.9), waited  # never early (0.1 s: the API's and the store's clocks)
    assert datetime.fromisoformat(now["created_at"]) > datetime.fromisoformat(in_a_second["created_at"])
    still = (await api.get(f"/v1/jobs/{later.json()['id']}")).json()
    assert still["status"] == "queued" and still["started_at"] is None
    store = api.app.state.store  # type: ignore[attr-defined]  # its event stream would wait for the start
    assert [e.type for e in await store.read_events(still["id"])] == ["job.queued"]


async def test_run_at_in_the_past_runs_at_once_and_bad_times_name_their_field(api_factory: ApiFactory) -> None:
    api = await api_factory()
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    job = (await submit(api, "demo", {"items": 1, "seconds": 0}, params={"run_at": past})).json()
    assert (await finished(api, job["id"]))["status"] == "succeeded"
    naive = datetime.now().replace(microsecond=0).isoformat()
    for params, field in [
        ({"run_at": naive}, "run_at"),
        ({"run_at": past, "delay_seconds": 5}, "delay_seconds"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"run_at": (datetime.now(UTC) + timedelta(days=31)).isoformat()}, "run_at"),
    ]:
        problem = assert_problem(await submit(api, "demo", {"items": 1}, params=params), 422)
        assert field in str(problem), problem
