"""Submitting jobs: 202 and its headers, Prefer: wait, idempotency, bodies that are refused."""

from __future__ import annotations

import asyncio

import httpx
from api_support import ApiFactory, assert_problem, finished, submit


async def test_submit_answers_202_with_location_retry_after_and_the_job(api: httpx.AsyncClient) -> None:
    response = await submit(api, body={"items": 2, "seconds": 0.01})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert 1 <= int(response.headers["retry-after"]) <= 600
    assert job["status"] in ("queued", "running", "succeeded")
    assert job["pipeline"] == "demo"
    assert job["links"]["events"] == f"/v1/jobs/{job['id']}/events"
    done = await finished(api, job["id"])
    assert done["status"] == "succeeded"
    assert done["progress"] == {"stage": "work", "done": 2, "total": 2}
    result = await api.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 200
    assert result.json() == {"ok": [0, 1], "failed": []}


async def test_prefer_wait_answers_200_when_the_job_finishes_in_time(api: httpx.AsyncClient) -> None:
    response = await submit(api, body={"items": 1, "seconds": 0.05}, headers={"Prefer": "wait=10"})
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=10"
    assert response.json()["status"] == "succeeded"
    assert "retry-after" not in response.headers


async def test_prefer_wait_answers_202_when_the_job_takes_longer(api: httpx.AsyncClient) -> None:
    response = await submit(api, body={"items": 1, "seconds": 3}, headers={"Prefer": "respond-async, wait=0.3"})
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=0.3"
    assert response.json()["status"] in ("queued", "running")


async def test_prefer_wait_is_capped_at_60_seconds(api: httpx.AsyncClient) -> None:
    response = await submit(api, body={"items": 0, "seconds": 0}, headers={"Prefer": "wait=3600"})
    assert response.headers["preference-applied"] == "wait=60"


async def test_50_concurrent_identical_requests_make_one_job(api: httpx.AsyncClient) -> None:
    body = {"items": 1, "seconds": 0.01}
    headers = {"Idempotency-Key": "race-1"}
    answers = await asyncio.gather(*(submit(api, body=body, headers=headers) for _ in range(50)))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 49
    listed = (await api.get("/v1/jobs")).json()["jobs"]
    assert len(listed) == 1


async def test_same_key_other_payload_is_422_and_malformed_key_400(api: httpx.AsyncClient) -> None:
    first = await submit(api, body={"items": 1, "seconds": 0}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202
    other = await submit(api, body={"items": 2, "seconds": 0}, headers={"Idempotency-Key": "k-1"})
    assert_problem(other, 422, "idempotency-key-reused")
    for bad in ("", "x" * 256, "café".encode(), "two words"):
        answer = await submit(api, body={}, headers={"Idempotency-Key": bad})
        assert_problem(answer, 400, "bad-request")
    assert len((await api.get("/v1/jobs")).json()["jobs"]) == 1


async def test_a_quoted_key_is_the_same_key(api: httpx.AsyncClient) -> None:
    a = await submit(api, body={"items": 0}, headers={"Idempotency-Key": '"abc"'})
    b = await submit(api, body={"items": 0}, headers={"Idempotency-Key": "abc"})
    assert a.json()["id"] == b.json()["id"]


async def test_refused_bodies_are_problems(api: httpx.AsyncClient) -> None:
    url = "/v1/pipelines/demo/jobs"
    assert_problem(await api.post(url, content=b"hello", headers={"content-type": "text/plain"}), 415)
    assert_problem(await api.post(url, content=b"{oops", headers={"content-type": "application/json"}), 422)
    assert_problem(await api.post(url, json=[1, 2]), 422, "invalid-input")
    problem = assert_problem(await submit(api, body={"items": -1}), 422, "invalid-input")
    assert problem["errors"][0]["loc"] == ["items"]
    assert_problem(await submit(api, "no-such-pipeline"), 404, "not-found")
    assert_problem(await api.post("/v1/pipelines/demo/jobs?priority=99999", json={}), 422)
    assert (await api.get("/v1/jobs")).json()["jobs"] == []


async def test_an_empty_body_is_the_default_input(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/pipelines/noop/jobs")
    assert response.status_code == 202
    assert (await finished(api, response.json()["id"]))["status"] == "succeeded"


async def test_queued_cap_per_tenant_answers_429_with_retry_after(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False, max_queued_per_tenant=2)
    for _ in range(2):
        assert (await submit(api, "noop")).status_code == 202
    problem = assert_problem(await submit(api, "noop"), 429, "too-many-requests")
    assert "2 queued" in problem["detail"]
    refused = await submit(api, "noop")
    assert int(refused.headers["retry-after"]) >= 1
    queued = (await api.get("/v1/jobs")).json()["jobs"]
    assert (await api.post(f"/v1/jobs/{queued[0]['id']}/cancel")).json()["status"] == "canceled"
    assert (await submit(api, "noop")).status_code == 202  # room again: the cap counts afresh before refusing
    assert_problem(await submit(api, "noop"), 429)
