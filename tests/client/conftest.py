"""The light client (``clients/python``, ``ingestd_client``) against a live ``ingestd serve`` over real HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "acceptance"))  # server_process: ingestd as subprocesses

from client_support import ALICE, USERS, Live
from ingestd_client import Client
from server_process import Server, ingestd


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("client")
    database = f"sqlite:///{root}/ingestd.db"
    made = ingestd("keys", "create", "--tenant", "acme", "--database", database)
    assert made.returncode == 0, made.stderr
    server = Server(database, root / "serve.log", memory_embedding="hashing")
    try:
        with Client(server.url, made.stdout.strip()) as client:
            jobs = [client.submit("memory", {**ALICE, "user_id": user}) for user in USERS]  # run side by side
            assert [client.wait(job.id, deadline=120).status for job in jobs] == ["succeeded"] * len(USERS)
        yield Live(server.url, made.stdout.strip())
    finally:
        server.stop()
