"""API keys with a lifecycle, through the API (SQLite and PostgreSQL): ``/v1/admin/keys`` lists (ids, never
secrets), creates and revokes; scopes decide what a key may do (403 naming the scope); expired and revoked keys
are 401; open mode has no admin API."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from api_support import ApiFactory, assert_problem

from ingestd.api import auth


async def _bearer(api: httpx.AsyncClient, tenant: str, *scopes: str, **options: object) -> dict[str, str]:
    store = api.app.state.store  # type: ignore[attr-defined]
    _, secret = await auth.make_key(store, tenant, scopes=scopes, **options)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {secret}"}


async def test_an_admin_key_creates_lists_and_revokes_keys(
    api_factory: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    api = await api_factory(run_worker=False)
    admin = await _bearer(api, "ops", "admin")
    caplog.set_level(logging.INFO, logger="ingestd.keys")
    made = await api.post(
        "/v1/admin/keys", headers=admin, json={"tenant": "acme", "name": "ci", "scopes": ["jobs:read"]}
    )
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["id"].startswith("key_") and created["secret"].startswith("ik_")
    assert (created["tenant"], created["scopes"], created["state"]) == ("acme", ["jobs:read"], "active")
    acme = {"Authorization": f"Bearer {created['secret']}"}
    assert (await api.get("/v1/jobs", headers=acme)).status_code == 200

    listed = (await api.get("/v1/admin/keys", headers=admin)).json()["keys"]
    assert [(k["tenant"], k["name"]) for k in listed] == [("ops", None), ("acme", "ci")]
    assert "secret" not in listed[1] and created["secret"] not in str(listed)
    only_acme = (await api.get("/v1/admin/keys", params={"tenant": "acme"}, headers=admin)).json()["keys"]
    assert [k["id"] for k in only_acme] == [created["id"]]

    revoked = await api.post(f"/v1/admin/keys/{created['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    again = await api.post(f"/v1/admin/keys/{created['id']}/revoke", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # idempotent
    problem = assert_problem(await api.get("/v1/jobs", headers=acme), 401, "unauthorized")
    assert created["id"] in problem["detail"] and "revoked" in problem["detail"]
    assert_problem(await api.post("/v1/admin/keys/key_nope/revoke", headers=admin), 404, "not-found")
    logged = caplog.text
    assert created["id"] in logged and created["secret"] not in logged


async def test_a_scoped_key_can_do_only_what_its_scopes_allow(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    reader = await _bearer(api, "acme", "jobs:read")
    writer = await _bearer(api, "acme", "jobs:write")
    memory = await _bearer(api, "acme", "memory:read")
    everything = await _bearer(api, "acme", "jobs:read", "jobs:write", "memory:read")
    job = (await api.post("/v1/pipelines/noop/jobs", json={}, headers=writer)).json()
    assert (await api.get(f"/v1/jobs/{job['id']}", headers=reader)).json()["id"] == job["id"]
    refused = assert_problem(await api.post("/v1/pipelines/noop/jobs", json={}, headers=reader), 403, "forbidden")
    assert refused["scope"] == "jobs:write" and "jobs:write" in refused["detail"]
    assert_problem(await api.post(f"/v1/jobs/{job['id']}/cancel", headers=reader), 403, "forbidden")
    assert_problem(await api.get(f"/v1/jobs/{job['id']}", headers=writer), 403, "forbidden")
    assert_problem(await api.get("/v1/jobs", headers=memory), 403, "forbidden")
    assert_problem(await api.get("/v1/webhooks/secret", headers=reader), 403, "forbidden")
    for key in (reader, writer, memory, everything):
        assert_problem(await api.get("/v1/admin/keys", headers=key), 403, "forbidden")
    assert (await api.get("/v1/jobs", headers=everything)).status_code == 200


async def test_an_expired_key_is_refused_and_bad_requests_name_the_field(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    admin = await _bearer(api, "ops", "admin")
    past = await _bearer(api, "acme", "jobs:read", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    problem = assert_problem(await api.get("/v1/jobs", headers=past), 401, "unauthorized")
    assert "expired" in problem["detail"]
    future = (await api.post("/v1/admin/keys", headers=admin, json={"tenant": "a", "expires_in_seconds": 3600})).json()
    assert future["state"] == "active" and future["expires_at"] > datetime.now(UTC).isoformat()
    for body, field in [
        ({"tenant": "acme", "scopes": ["jobs:delete"]}, "scopes"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "acme", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ]:
        problem = assert_problem(await api.post("/v1/admin/keys", headers=admin, json=body), 422)
        assert field in str(problem), problem


async def test_open_mode_has_no_admin_api(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False)
    assert (await api.get("/v1/jobs")).status_code == 200  # open: no key yet
    problem = assert_problem(await api.get("/v1/admin/keys"), 401, "unauthorized")
    assert "ingestd keys create --scope admin" in problem["detail"]
