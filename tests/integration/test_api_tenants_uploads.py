"""API keys and tenants; multipart uploads streamed to the store, and their limits."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
from api_support import ApiFactory, assert_problem, finished, submit

from ingestd.api import auth


async def _keys(api: httpx.AsyncClient, *tenants: str) -> list[dict[str, str]]:
    store = api.app.state.store  # type: ignore[attr-defined]
    return [{"Authorization": f"Bearer {await auth.create_key(store, t)}"} for t in tenants]


async def test_a_tenant_sees_only_its_own_jobs(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    acme, globex = await _keys(api, "acme", "globex")
    job = (await submit(api, "noop", headers=acme)).json()
    assert (await api.get(f"/v1/jobs/{job['id']}", headers=acme)).status_code == 200
    for method, path in [("GET", ""), ("GET", "/result"), ("GET", "/events"), ("POST", "/cancel"), ("DELETE", "")]:
        answer = await api.request(method, f"/v1/jobs/{job['id']}{path}", headers=globex)
        assert_problem(answer, 404, "not-found")
    assert (await api.get("/v1/jobs", headers=globex)).json()["jobs"] == []
    assert [j["id"] for j in (await api.get("/v1/jobs", headers=acme)).json()["jobs"]] == [job["id"]]
    x_api_key = {"X-API-Key": acme["Authorization"].removeprefix("Bearer ")}
    assert (await api.get(f"/v1/jobs/{job['id']}", headers=x_api_key)).status_code == 200


async def test_the_same_idempotency_key_is_separate_per_tenant(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    acme, globex = await _keys(api, "acme", "globex")
    a = await submit(api, "noop", headers={**acme, "Idempotency-Key": "same"})
    b = await submit(api, "noop", headers={**globex, "Idempotency-Key": "same"})
    assert a.json()["id"] != b.json()["id"]


async def test_once_a_key_exists_requests_need_one(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    assert (await api.get("/v1/jobs")).status_code == 200  # open mode: no key yet
    await _keys(api, "acme")
    api.app.state.key_cache._checked_at = -1e9  # type: ignore[attr-defined]  # skip the 1 s open-mode cache
    assert_problem(await api.get("/v1/jobs"), 401, "unauthorized")
    assert_problem(await api.get("/v1/jobs", headers={"Authorization": "Bearer ik_wrong"}), 401)
    assert_problem(await api.get("/v1/jobs", headers={"Authorization": "Basic abc"}), 401)


async def test_open_mode_refuses_clients_off_loopback(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    transport = httpx.ASGITransport(app=api.app, client=("203.0.113.9", 4000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test") as remote:
        problem = assert_problem(await remote.get("/v1/jobs"), 401)
    assert "loopback" in problem["detail"]


async def test_files_are_stored_and_given_to_the_pipeline(api: httpx.AsyncClient) -> None:
    audio = os.urandom(300_000)
    files = [("file", ("a.bin", audio, "application/octet-stream")), ("file", ("b.txt", b"hello", "text/plain"))]
    data = {"input": json.dumps({"label": "two"}), "meta.a.bin": json.dumps({"captured_at": "2026-11-25T10:00:00Z"})}
    response = await api.post("/v1/pipelines/checksum/jobs", files=files, data=data)
    assert response.status_code == 202, response.text
    listed = response.json()["files"]
    assert [(f["name"], f["size"]) for f in listed] == [("a.bin", 300_000), ("b.txt", 5)]
    await finished(api, response.json()["id"])
    result = (await api.get(f"/v1/jobs/{response.json()['id']}/result")).json()
    assert result["label"] == "two"
    assert result["files"][0]["sha256"] == hashlib.sha256(audio).hexdigest()
    assert result["files"][0]["meta"] == {"captured_at": "2026-11-25T10:00:00Z"}
    assert result["files"][1]["sha256"] == hashlib.sha256(b"hello").hexdigest()


async def test_a_replayed_upload_is_the_same_job_and_stores_nothing_twice(api: httpx.AsyncClient) -> None:
    files = {"file": ("a.bin", b"x" * 1000)}
    headers = {"Idempotency-Key": "upload-1"}
    first = await api.post("/v1/pipelines/checksum/jobs", files=files, data={"input": "{}"}, headers=headers)
    again = await api.post("/v1/pipelines/checksum/jobs", files=files, data={"input": "{}"}, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await api.post("/v1/pipelines/checksum/jobs", files={"file": ("a.bin", b"y" * 1000)}, headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")


def _blob_files(database_url: str) -> list[str]:
    if not database_url.startswith("sqlite:///"):
        return []
    root = database_url.removeprefix("sqlite:///") + ".blobs"
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


async def test_an_upload_over_the_limit_is_413_and_leaves_nothing(api_factory: ApiFactory, database_url: str) -> None:
    api = await api_factory(max_upload_bytes=100_000)
    files = [("file", ("small.bin", b"s" * 10)), ("file", ("big.bin", os.urandom(250_000)))]
    response = await api.post("/v1/pipelines/checksum/jobs", files=files, data={"input": "{}"})
    problem = assert_problem(response, 413, "input-too-large")
    assert "100000" in problem["detail"] or "limit" in problem["detail"]
    assert _blob_files(database_url) == []
    assert (await api.get("/v1/jobs")).json()["jobs"] == []
    too_big_json = await submit(api, "noop", body={"pad": "x" * 200_000})
    assert_problem(too_big_json, 413)


async def test_malformed_multipart_bodies_are_problems(api: httpx.AsyncClient) -> None:
    url = "/v1/pipelines/checksum/jobs"
    no_boundary = await api.post(url, content=b"--x--", headers={"content-type": "multipart/form-data"})
    assert_problem(no_boundary, 400)
    bad_input = await api.post(url, files={"file": ("a", b"1")}, data={"input": "not json"})
    assert_problem(bad_input, 422)
    stray = await api.post(url, files={"file": ("a", b"1")}, data={"what": "is this"})
    assert_problem(stray, 422)
    takes_none = await api.post("/v1/pipelines/noop/jobs", files={"file": ("a", b"1")})
    assert_problem(takes_none, 422)
    assert (await api.get("/v1/jobs")).json()["jobs"] == []
