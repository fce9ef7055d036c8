"""A revoked key is refused by every API process within 5 s: two ``ingestd api`` processes on one database
(SQLite and PostgreSQL), a key revoked through one of them (``/v1/admin/keys``) and another with ``ingestd keys
revoke``; ``ingestd keys list`` shows what happened, by key id."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from server_process import Process, free_port, ingestd
from workers import wait_healthy

from ingestd.api import auth
from ingestd.models import NewJob
from ingestd.store import open_store

REFUSED_WITHIN = 5.0  # seconds: the promise of docs/operations.md ("API keys")


def _create(database_url: str, tenant: str, *scopes: str) -> dict[str, str]:
    """A key made by ``ingestd keys create --json``."""
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    made = ingestd("keys", "create", "--tenant", tenant, *args, "--json", "--database", database_url)
    assert made.returncode == 0, made.stderr
    key: dict[str, str] = json.loads(made.stdout)
    return key


async def _made_in_process(database_url: str, tenant: str, count: int) -> list[dict[str, str]]:
    """Keys made through the store, as the CLI makes them, without a process start each (several seconds on a
    loaded machine); the CLI's own ``keys create`` is the admin key's, above."""
    store = await open_store(database_url)
    try:
        made = [await auth.make_key(store, tenant, scopes=("jobs:read",)) for _ in range(count)]
    finally:
        await store.close()
    return [{"id": key.id, "secret": secret} for key, secret in made]


def _seconds_until_refused(http: httpx.Client, url: str, secret: str) -> float:
    start = time.monotonic()
    while (status := http.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {secret}"}).status_code) == 200:
        assert time.monotonic() - start < 30, "never refused"
        time.sleep(0.05)
    assert status == 401
    return time.monotonic() - start


@pytest.mark.slow
def test_a_revoked_key_is_refused_by_every_api_process(database_url: str, tmp_path: Path) -> None:
    admin = _create(database_url, "ops", "admin")
    first, second = asyncio.run(_made_in_process(database_url, "acme", 2))
    ports = [free_port(), free_port()]
    apis = [Process(["api", "--port", str(p), "--database", database_url], tmp_path / f"api-{p}.log") for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    # One client for every request: each httpx.get makes its own, whose TLS context loads the CA bundle (0.1 CPU-s
    # at load 10); polling with it burned a core beside the processes under test.
    http = httpx.Client(timeout=30)
    try:
        for api, url in zip(apis, urls, strict=True):
            assert api.proc is not None
            wait_healthy(url, api.proc, api.log_path)
        for url in urls:  # both processes have read (and cached) both keys
            for key in (first, second):
                assert http.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {key['secret']}"}).is_success
        answer = http.post(
            f"{urls[0]}/v1/admin/keys/{first['id']}/revoke", headers={"Authorization": f"Bearer {admin['secret']}"}
        )
        assert answer.status_code == 200 and answer.json()["state"] == "revoked"
        waits = [_seconds_until_refused(http, url, first["secret"]) for url in urls]
        revoked = ingestd("keys", "revoke", second["id"], "--database", database_url)
        assert revoked.returncode == 0 and second["id"] in revoked.stdout
        waits += [_seconds_until_refused(http, url, second["secret"]) for url in urls]
        assert max(waits) < REFUSED_WITHIN, waits
        listed = ingestd("keys", "list", "--json", "--database", database_url)
        states = {k["id"]: k["state"] for k in json.loads(listed.stdout)["keys"]}
        assert states == {admin["id"]: "active", first["id"]: "revoked", second["id"]: "revoked"}
        logs = "".join(api.output() for api in apis)
        assert all(k["secret"] not in logs + listed.stdout for k in (admin, first, second))
    finally:
        http.close()
        for api in apis:
            api.stop()


async def _submit_keyless_job(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        await store.migrate()
        await store.submit(NewJob(pipeline="noop", input={}))  # open mode: tenant default
    finally:
        await store.close()


def test_the_first_key_says_where_the_keyless_jobs_went(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/keys.db"
    asyncio.run(_submit_keyless_job(database_url))
    made = ingestd("keys", "create", "--tenant", "acme", "--database", database_url)
    assert made.returncode == 0 and made.stdout.startswith("ik_"), made.stderr
    assert "belong to tenant 'default'" in made.stderr and "keys create --tenant default" in made.stderr
    again = ingestd("keys", "create", "--tenant", "globex", "--database", database_url)  # not the first key
    assert again.returncode == 0 and "note:" not in again.stderr
