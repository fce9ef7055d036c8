"""Filters and deletion through the HTTP API, on SQLite and PostgreSQL: ``as_of`` returns the fact that held
then; deleting a session removes its messages and the facts only it stated (and a fact it had closed holds
again), and nothing else; deleting a user's memory makes it unknown."""

from __future__ import annotations

from typing import Any

import httpx
from memory_support import api_client, fast_settings, job_done, post_session

from ingestd.store.protocol import JobStore


def _said(content: str, at: str) -> dict[str, Any]:
    return {"name": "Ana", "role": "user", "content": content, "timestamp": at}


MARCH = {"user_id": "ana", "session_id": "march", "messages": [
    _said("My friend Emma Schmidt lives in Lisbon.", "2026-03-01T10:00:00Z"),
    _said("Tom Becker works at Stripe.", "2026-03-01T10:01:00Z"),
]}  # fmt: skip
JUNE = {"user_id": "ana", "session_id": "june", "messages": [
    _said("Emma Schmidt now lives in Porto.", "2026-06-01T10:00:00Z"),
    _said("I started pottery classes yesterday.", "2026-06-01T10:01:00Z"),
]}  # fmt: skip


def _lives(answer: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(f["object"]["name"], f["current"]) for f in answer["facts"] if f["predicate"] == "lives_in"]


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_as_of_since_and_speaker_filters(store: JobStore) -> None:
    async with api_client(store, fast_settings(store.url)) as client:
        for body in (MARCH, JUNE):
            assert (await job_done(client, await post_session(client, body)))["status"] == "succeeded"
        now = await _get(client, "/v1/memory/ana/search", q="Where does Emma live?")
        april = await _get(client, "/v1/memory/ana/search", q="Where does Emma live?", as_of="2026-04-01T00:00:00")
        june = await _get(client, "/v1/memory/ana/search", q="Emma", since="2026-05-01T00:00:00Z")
        nobody = await _get(client, "/v1/memory/ana/search", q="Emma", speaker="Bob")
        bad = await client.get("/v1/memory/ana/search", params={"q": "Emma", "as_of": "last spring"})
    assert _lives(now)[0] == ("Porto", True) and ("Lisbon", False) in _lives(now)
    assert _lives(april) == [("Lisbon", False)]  # closed in June, but it held in April; Porto did not yet
    assert {m["session_id"] for m in june["messages"]} == {"june"} and june["messages"]
    assert all(m["timestamp"] < "2026-04" for m in april["messages"]) and april["messages"]
    assert nobody["messages"] == [] and nobody["facts"] == []
    assert bad.status_code == 422 and "as_of" in bad.text


async def test_deleting_a_session_removes_it_and_its_facts_only(store: JobStore) -> None:
    async with api_client(store, fast_settings(store.url)) as client:
        for body in (MARCH, JUNE):
            assert (await job_done(client, await post_session(client, body)))["status"] == "succeeded"
        sessions = await _get(client, "/v1/memory/ana/sessions")
        deleted = await client.delete("/v1/memory/ana/sessions/june")
        left = await _get(client, "/v1/memory/ana/messages")
        after = await _get(client, "/v1/memory/ana/search", q="Where does Emma live? pottery")
        one = await client.delete("/v1/memory/ana/messages/march:1")
        tom = await _get(client, "/v1/memory/ana/search", q="Where does Tom Becker work?")
        gone = await client.delete("/v1/memory/ana")
        unknown = await client.get("/v1/memory/ana/search", params={"q": "Emma"})
    assert [(s["session_id"], s["messages"]) for s in sessions["sessions"]] == [("june", 2), ("march", 2)]
    assert deleted.status_code == 200 and deleted.json()["deleted"]["messages"] == 2
    assert deleted.json()["deleted"]["facts"] >= 2 and deleted.json()["deleted"]["facts_reopened"] == 1
    assert [m["id"] for m in left["messages"]] == ["march:0", "march:1"]
    # Porto and pottery went with June; Lisbon, which Porto had closed, holds again.
    assert _lives(after) == [("Lisbon", True)] and "pottery" not in str([after["facts"], after["messages"]])
    assert {m["session_id"] for m in after["messages"]} == {"march"}
    assert one.json()["deleted"] == {"messages": 1, "facts": 1, "facts_reopened": 0}
    assert not any(f["object"]["name"] == "Stripe" for f in tom["facts"])
    assert [m["id"] for m in tom["messages"]] == ["march:0"]
    assert gone.status_code == 200 and gone.json()["deleted"]["messages"] == 1
    assert unknown.status_code == 404
