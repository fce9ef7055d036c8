"""The memory pipeline end to end through the HTTP API (app + worker in process), on SQLite and PostgreSQL.

Two sessions of one user mention the same people and places under other spellings; the graph keeps each entity
once, a later contradicting fact closes the earlier one, and search, entity history and context show it.
Extraction is the offline default (spaCy rules), embeddings the default hashing embedder: both deterministic.
"""

from __future__ import annotations

from typing import Any

import httpx
from memory_support import (
    api_client,
    fast_settings,
    job_done,
    post_session,
    running_worker,
    session,
    submit,
    wait_finished,
)

from ingestd.api.app import create_app
from ingestd.api.auth import create_key
from ingestd.pipelines import memory
from ingestd.pipelines.memory.graph import Scope, open_graph_store
from ingestd.store.protocol import JobStore

MARCH = session(
    "alice",
    "s1",
    "2026-03-01T10:00:00+00:00",
    "My friend Emma Schmidt lives in Lisbon and works at Stripe.",
    "Tom Becker works in São Paulo.",
    "Anna Müller lives in Zürich.",
)
JUNE = session(
    "alice",
    "s2",
    "2026-06-01T10:00:00+00:00",
    "I had lunch with emma schmidt today.",
    "Ms. Schmidt now lives in Porto.",
    "Tom Becker works in Sao Paulo.",
    "Anna lives in Zurich now.",
    "Anna Mueller works at Stripe.",
)


def _facts(answer: dict[str, Any], predicate: str) -> list[tuple[str, str, bool]]:
    return [(f["subject"]["name"], f["object"]["name"], f["current"]) for f in answer if f["predicate"] == predicate]


async def _both_sessions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    ids = [await post_session(client, MARCH), await post_session(client, JUNE)]
    return [await job_done(client, i) for i in ids]


async def test_two_sessions_become_one_graph_with_history(store: JobStore) -> None:
    async with api_client(store, fast_settings(store.url)) as client:
        jobs = await _both_sessions(client)
        assert [j["status"] for j in jobs] == ["succeeded", "succeeded"], [j.get("error") for j in jobs]
        found = (await client.get("/v1/memory/alice/search", params={"q": "Where does Emma Schmidt live?"})).json()
        emma = next(e for e in found["entities"] if e["name"] == "Emma Schmidt")
        history = (await client.get(f"/v1/memory/alice/entities/{emma['id']}")).json()
        context = await client.get("/v1/memory/alice/context", params={"q": "Where does Emma live?", "format": "text"})
    # Current facts first: Porto (said in June about "Ms. Schmidt") is current, Lisbon is history.
    emma_lives = [f for f in _facts(found["facts"], "lives_in") if f[0] == "Emma Schmidt"]
    assert found["facts"][0]["object"]["name"] == "Porto"
    assert emma_lives == [("Emma Schmidt", "Porto", True), ("Emma Schmidt", "Lisbon", False)]
    assert found["vector_search"] is True
    lives = [(f["object"]["name"], f["valid_at"][:10], (f["invalid_at"] or "")[:10]) for f in history["facts"]]
    assert [x for x in lives if x[0] in ("Lisbon", "Porto")] == [
        ("Lisbon", "2026-03-01", "2026-06-01"),
        ("Porto", "2026-06-01", ""),
    ]
    assert {"emma schmidt", "schmidt"} <= set(history["entity"]["aliases"])
    assert context.status_code == 200 and context.headers["content-type"].startswith("text/plain")
    lines = context.text.splitlines()
    porto, lisbon = (
        "User: Ms. Schmidt now lives in Porto.",
        "User: My friend Emma Schmidt lives in Lisbon and works at Stripe.",
    )
    assert lines.index("1 March 2026:") < lines.index(lisbon) < lines.index("1 June 2026:") < lines.index(porto)
    await _assert_each_entity_once(store.url, Scope("default", "alice"))


async def _assert_each_entity_once(url: str, scope: Scope) -> None:
    graph = await open_graph_store(url)
    try:
        entities = await graph.known_entities(scope)
        by_name = {e.name: e for e in entities}
        tom_facts = await graph.entity_facts(scope, by_name["Tom Becker"].id)
        anna_facts = await graph.entity_facts(scope, by_name["Anna Müller"].id)
    finally:
        await graph.close()
    names = sorted(e.name for e in entities)
    # "emma schmidt", "Ms. Schmidt", "Sao Paulo", "Zurich", "Anna", "Anna Mueller": no second entity.
    assert names == sorted(["Emma Schmidt", "Lisbon", "Stripe", "Tom Becker", "São Paulo", "Anna Müller", "Zürich",
                            "User", "Porto"]), names  # fmt: skip
    # Said in both sessions, stored once; "Anna lives in Zurich now" is Anna Müller's fact, already known.
    assert [(f.predicate, f.object, f.current) for f in tom_facts] == [("work_in", "São Paulo", True)]
    assert [(f.predicate, f.object, f.current) for f in anna_facts] == [
        ("lives_in", "Zürich", True),
        ("works_at", "Stripe", True),
    ]


async def test_context_block_json_and_search_with_past_and_current(store: JobStore) -> None:
    async with api_client(store, fast_settings(store.url)) as client:
        await _both_sessions(client)
        answer = await client.get("/v1/memory/alice/context", params={"q": "Where does Anna live and work?"})
        search = await client.get("/v1/memory/alice/search", params={"q": "Zurich", "limit": 3})
    body = answer.json()
    assert answer.status_code == 200 and body["user_id"] == "alice"
    assert body["context"].startswith('<memory user="alice">') and body["context"].endswith("</memory>")
    assert "User: Anna Müller lives in Zürich." in body["context"].splitlines()
    assert {"s1:4", "s2:8"} <= set(body["message_ids"]) and body["words"] == len(body["context"].split())
    shown = {m["id"]: m["shown"] for m in body["messages"]}
    assert shown["s2:8"] == "Anna Mueller works at Stripe." and set(shown) <= set(body["message_ids"])
    hits = search.json()["facts"]
    assert 1 <= len(hits) <= 3 and hits[0]["subject"]["name"] == "Anna Müller" and hits[0]["current"]


async def test_another_tenant_sees_no_memory(store: JobStore) -> None:
    acme, other = await create_key(store, "acme"), await create_key(store, "other")
    settings = fast_settings(store.url)
    async with api_client(store, settings, key=acme) as client:
        job = await job_done(client, await post_session(client, MARCH))
        assert job["status"] == "succeeded"
        mine = await client.get("/v1/memory/alice/search", params={"q": "Emma"})
        emma_id = next(e["id"] for e in mine.json()["entities"] if e["name"] == "Emma Schmidt")
        client.headers["Authorization"] = f"Bearer {other}"
        theirs = [
            await client.get("/v1/memory/alice/search", params={"q": "Emma"}),
            await client.get(f"/v1/memory/alice/entities/{emma_id}"),
            await client.get("/v1/memory/alice/context", params={"q": "Emma"}),
        ]
        del client.headers["Authorization"]
        anonymous = await client.get("/v1/memory/alice/search", params={"q": "Emma"})
    assert mine.status_code == 200
    assert [r.status_code for r in theirs] == [404, 404, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in theirs)
    assert anonymous.status_code == 401


async def test_bad_requests_get_problems(store: JobStore) -> None:
    empty = {**MARCH, "messages": []}
    missing = {**MARCH, "messages": [{**MARCH["messages"][0], "timestamp": None}]}
    huge = {**MARCH, "messages": [{**MARCH["messages"][0], "content": "x" * 20_001}]}
    no_role = {**MARCH, "messages": [{"content": "hi", "timestamp": "2026-03-01T10:00:00Z"}]}
    async with api_client(store, fast_settings(store.url)) as client:
        bodies = (empty, missing, huge, no_role)
        submits = [await client.post("/v1/pipelines/memory/jobs", json=body) for body in bodies]
        reads = [
            await client.get("/v1/memory/alice/search"),  # no q
            await client.get("/v1/memory/alice/search", params={"q": ""}),
            await client.get("/v1/memory/al ice/search", params={"q": "x"}),
            await client.get("/v1/memory/nobody/search", params={"q": "x"}),
            await client.get("/v1/memory/nobody/entities/e1"),
        ]
        listed = (await client.get("/v1/jobs")).json()
    assert [r.status_code for r in submits] == [422, 422, 422, 422]
    assert [r.status_code for r in reads] == [422, 422, 422, 404, 404]
    for response in submits + reads:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json" and problem["detail"], problem
    assert "messages" in submits[0].text and "timestamp" in submits[1].text
    assert listed["jobs"] == [], "a rejected session must not become a job"


async def test_an_api_process_without_the_memory_pipeline_still_answers(store: JobStore) -> None:
    settings = fast_settings(store.url)
    async with running_worker(store, settings):
        await wait_finished(store, (await submit(store, MARCH)).id)
    app = create_app(settings, store=store, pipelines={})  # API only: it embeds queries with its own embedder
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test") as client:
            found = await client.get("/v1/memory/alice/search", params={"q": "Where does Emma Schmidt live?"})
    assert found.status_code == 200 and found.json()["vector_search"] is True
    assert found.json()["facts"][0]["object"]["name"] == "Lisbon"


async def test_the_api_reads_the_graph_the_worker_writes_one_per_process(store: JobStore) -> None:
    """An app that runs the memory pipeline opens its graph once: the read API uses the worker's (one pool, one
    vector cache per process), and opens none of its own."""
    settings = fast_settings(store.url)
    pipeline = memory.build(settings)
    app = create_app(settings, store=store, pipelines={"memory": pipeline}, run_worker=True)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test") as client:
                await _both_sessions(client)
                found = (await client.get("/v1/memory/alice/search", params={"q": "Emma"})).json()
                run = pipeline.run.__self__  # type: ignore[attr-defined]
                assert found["facts"] and run._graph is not None
                assert app.state.memory.graph is None
    finally:
        await pipeline.run.__self__.aclose()  # type: ignore[attr-defined]
