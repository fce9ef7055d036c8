"""The light client (``clients/python``, ``ingestd_client``) against a live ``ingestd serve`` over real HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "acceptance"))  # server_process: ingestd as subprocesses

from ingestd_client import Client
from server_process import Server, ingestd

USERS = ("alice", "alice-del", "alice+async@example.com")  # each test that deletes has its own user

ALICE = {
    "user_id": "alice",
    "session_id": "s1",
    "reference_time": "2026-03-01T10:00:00Z",
    "messages": [
        {"role": "user", "content": "My friend Emma Schmidt lives in Lisbon and works at Stripe.",
         "timestamp": "2026-03-01T10:00:00Z"},
        {"role": "assistant", "content": "Noted.", "timestamp": "2026-03-01T10:00:05Z"},
        {"role": "user", "content": "Tom Becker lives in Berlin.", "timestamp": "2026-03-01T10:01:00Z"},
    ],
}  # fmt: skip


@dataclass
class Live:
    """A server with a key of tenant ``acme`` (every scope but admin) and ``ALICE``'s session in the memory of
    each of ``USERS``."""

    url: str
    key: str


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
