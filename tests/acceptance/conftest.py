"""Acceptance tests: ``ingestd`` commands as subprocesses, driven over real HTTP on loopback.

``served``: one ``ingestd serve`` on a SQLite file for the session, with two tenants' API keys made by
``ingestd keys create`` (``acme`` and ``globex``) before it starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import Served, Server, ingestd


def make_key(database_url: str, tenant: str) -> str:
    made = ingestd("keys", "create", "--tenant", tenant, "--database", database_url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ik_") and len(key) > 30
    return key


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root: Path = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{root}/var/ingestd.db"
    keys = {tenant: make_key(url, tenant) for tenant in ("acme", "globex")}
    server = Server(url, root / "serve.log", max_upload_bytes=2_000_000)
    try:
        yield Served(server, url, keys)
    finally:
        server.stop()


@pytest.fixture
def acme(served: Served) -> Iterator[httpx.Client]:
    with served.client("acme") as client:
        yield client
