"""Batch submit through the API (both databases): ``POST /v1/pipelines/{name}/jobs:batch``, up to 1,000 items,
one idempotency key each, a job or a problem per item."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import ApiFactory, assert_problem

from ingestd.models import JobFilter
from ingestd.store.protocol import JobStore


async def batch(api: Any, items: list[dict[str, Any]], key: str | None = None, pipeline: str = "demo") -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/v1/pipelines/{pipeline}/jobs:batch", json={"jobs": items}, headers=headers)


async def count_jobs(store: JobStore) -> int:
    total, cursor = 0, None
    while True:
        page = await store.list_jobs(JobFilter(tenant="default"), limit=500, cursor=cursor)
        total += len(page.jobs)
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


async def test_a_batch_of_1000_makes_1000_jobs_once_under_retries(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    items = [{"input": {"items": 1 + i % 7, "seconds": 0}} for i in range(1000)]
    # The client lost the first answer and sent the batch again, twice, the second time while the first ran.
    first, again = await asyncio.gather(batch(api, items, key="nightly-0412"), batch(api, items, key="nightly-0412"))
    third = await batch(api, items, key="nightly-0412")
    for answer in (first, again, third):
        assert answer.status_code == 200, answer.text
    ids = [[r["job"]["id"] for r in a.json()["jobs"]] for a in (first, again, third)]
    assert len(set(ids[0])) == 1000 and ids[0] == ids[1] == ids[2]  # the same job for each item, in order
    assert [r["index"] for r in third.json()["jobs"]] == list(range(1000))
    assert all(r["replayed"] for r in third.json()["jobs"]) and third.json()["accepted"] == 1000
    created = sum(not r["replayed"] for a in (first, again) for r in a.json()["jobs"])
    assert created == 1000  # whichever request got there first made each job; the other replayed it
    assert await count_jobs(api.app.state.store) == 1000  # type: ignore[attr-defined]
    job = (await api.get(f"/v1/jobs/{ids[0][7]}")).json()
    assert job["status"] == "queued" and job["pipeline"] == "demo"


async def test_each_item_gets_its_job_or_its_own_problem(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    single = await api.post("/v1/pipelines/demo/jobs", json={"items": 2}, headers={"Idempotency-Key": "mine"})
    assert single.status_code == 202
    items = [
        {"input": {"items": 2}, "idempotency_key": "mine"},  # the single submit's key and input: the same job
        {"input": {"items": -1}},  # not a valid input
        {"input": {"items": 3}, "idempotency_key": "mine"},  # the same key, another input
        {"input": {}, "webhook_url": "http://169.254.169.254/latest/"},  # a metadata address
        {"input": {}, "priority": 5, "delay_seconds": 600, "ordering_key": "acct-1"},
    ]
    answer = await batch(api, items)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    replayed, invalid, reused, refused, delayed = body["jobs"]
    assert replayed["job"]["id"] == single.json()["id"] and replayed["replayed"] is True
    assert invalid["index"] == 1 and invalid["problem"]["status"] == 422 and invalid["problem"]["errors"]
    assert reused["problem"]["code"] == "idempotency-key-reused"
    assert refused["problem"]["code"] == "webhook-target-refused" and "metadata" in refused["problem"]["detail"]
    job = (await api.get(f"/v1/jobs/{delayed['job']['id']}")).json()
    assert job["status"] == "queued" and job["ordering_key"] == "acct-1"


async def test_a_batch_too_big_or_for_no_pipeline_is_refused_whole(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    assert_problem(await batch(api, [{"input": {}}] * 1001), 422)
    assert_problem(await batch(api, []), 422)
    assert_problem(await batch(api, [{"input": {}}], pipeline="nope"), 404)
    assert_problem(await batch(api, [{"input": {}}], key="bad key with spaces"), 400)
    assert await count_jobs(api.app.state.store) == 0  # type: ignore[attr-defined]


async def test_batch_jobs_run(api_factory: ApiFactory) -> None:
    api = await api_factory()
    answer = await batch(api, [{"input": {"items": 1, "seconds": 0}} for _ in range(3)])
    for entry in answer.json()["jobs"]:
        job = (await api.get(f"/v1/jobs/{entry['job']['id']}", params={"wait": 10})).json()
        while job["status"] in ("queued", "running"):
            job = (await api.get(f"/v1/jobs/{entry['job']['id']}", params={"wait": 10})).json()
        assert job["status"] == "succeeded"
