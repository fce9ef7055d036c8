"""``ingestd_client`` against a live server: jobs, and a user's memory searched, turned into prompt context and
deleted, each answer shaped as the published ``TypedDict`` says (no key missing, none unknown)."""

from __future__ import annotations

from typing import Any, get_type_hints

import ingestd_client
import pytest
from client_support import Live
from ingestd_client import (
    ApiError,
    AsyncClient,
    Client,
    EventStream,
    Fact,
    MemoryContext,
    MemoryDeletion,
    MemorySearch,
    Message,
)


def assert_shaped(value: dict[str, Any], typed: Any) -> None:
    """``value`` has every required key of the TypedDict ``typed`` and no key it does not declare."""
    assert typed.__required_keys__ <= set(value), (typed.__name__, set(typed.__required_keys__) - set(value))
    assert set(value) <= set(get_type_hints(typed)), (typed.__name__, set(value) - set(get_type_hints(typed)))


def test_the_client_imports_nothing_of_the_server() -> None:
    assert sorted(ingestd_client.__all__) == sorted(n for n in ingestd_client.__all__ if hasattr(ingestd_client, n))
    import subprocess
    import sys

    code = "import sys, ingestd_client; print(sorted(m for m in sys.modules if m.split('.')[0] in ('ingestd', "
    code += "'fastapi', 'sqlalchemy', 'standardwebhooks')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_job_through_the_light_client(live: Live) -> None:
    with Client(live.url, live.key) as client:
        job = client.submit("demo", {"items": 3, "seconds": 0.01})
        assert client.wait(job.id, deadline=60).status == "succeeded"
        assert client.result(job.id) == {"ok": [0, 1, 2], "failed": []}
        with pytest.raises(ApiError) as refused:
            client.get("no-such-job")
        assert refused.value.status == 404 and refused.value.code == "not-found"
        partial = client.wait(client.submit("demo", {"items": 2, "seconds": 0, "fail": [1]}).id, deadline=60)
        assert partial.status == "partial"
        assert client.retry(partial.id).status == "queued"
        assert client.wait(partial.id, strategy=EventStream(), deadline=60).data["attempt"] == 2
        finishes = [e.data["status"] for e in client.events(partial.id, deadline=60) if e.type == "job.finished"]
        assert finishes == ["partial", "partial"]  # one stream, both attempts (demo fails item 1 every time)
        with pytest.raises(ApiError) as busy:
            client.retry(job.id)  # succeeded: nothing to retry
        assert busy.value.status == 409


def test_memory_search_context_and_delete(live: Live) -> None:
    with Client(live.url, live.key) as client:
        found = client.memory.search("alice-del", "where does Emma live", limit=5)
        assert_shaped(dict(found), MemorySearch)
        assert found["messages"] and any("Lisbon" in m["content"] for m in found["messages"])
        for fact in found["facts"]:
            assert_shaped(dict(fact), Fact)
        for message in found["messages"]:
            assert_shaped(dict(message), Message)
        block = client.memory.context("alice-del", "where does Emma live", max_words=60)
        assert_shaped(dict(block), MemoryContext)
        assert "Lisbon" in block["context"] and block["words"] <= 60
        gone = client.memory.delete("alice-del", session_id="s1")
        assert_shaped(dict(gone), MemoryDeletion)
        assert gone["session_id"] == "s1" and gone["deleted"]["messages"] == 3
        assert client.memory.delete("alice-del")["deleted"]["messages"] == 0
        with pytest.raises(ApiError) as missing:
            client.memory.search("alice-del", "Emma")
        assert missing.value.status == 404


async def test_the_async_client_reads_memory_the_same(live: Live) -> None:
    with Client(live.url, live.key) as client:  # the user id is escaped in the path
        expected = client.memory.search("alice+async@example.com", "Tom Becker")
    async with AsyncClient(live.url, live.key) as aclient:
        assert await aclient.memory.search("alice+async@example.com", "Tom Becker") == expected
        block = await aclient.memory.context("alice+async@example.com", "Tom Becker")
        assert "Berlin" in block["context"]
        assert (await aclient.memory.delete("alice+async@example.com"))["deleted"]["messages"] == 3
