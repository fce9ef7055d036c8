"""The memory pipeline through a real worker, on SQLite and PostgreSQL, with the offline extractor (spaCy)."""

from __future__ import annotations

from memory_support import FIRST, SECOND, fast_settings, running_worker, submit, wait_finished

from ingestd.models import JobStatus
from ingestd.pipelines.memory.embedder import HashingEmbedder
from ingestd.pipelines.memory.graph import Scope, open_graph_store
from ingestd.store.protocol import JobStore


async def test_two_sessions_build_one_graph_with_history(store: JobStore) -> None:
    settings = fast_settings(store.url)
    async with running_worker(store, settings):
        first = await submit(store, FIRST)
        second = await submit(store, SECOND)
        done = [await wait_finished(store, first.id), await wait_finished(store, second.id)]
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * 2, [j.error for j in done]
    assert done[0].result is not None and done[0].result["extraction"]["spacy-ner+dependency-rules"]
    graph = await open_graph_store(store.url)
    try:
        scope = Scope("default", "alice")
        entities = {e.name: e for e in await graph.known_entities(scope)}
        people = sorted(n for n, e in entities.items() if e.type == "person")
        assert people == ["Emma Schmidt", "Tom Becker", "User"]
        emma = entities["Emma Schmidt"]
        assert {"emma schmidt", "schmidt"} <= set(emma.aliases)
        facts = await graph.entity_facts(scope, emma.id)
        lives = [(f.object, f.invalid_at is None) for f in facts if f.predicate == "lives_in"]
        assert lives == [("Lisbon", False), ("Porto", True)]
        tom = await graph.entity_facts(scope, entities["Tom Becker"].id)
        assert [(f.predicate, f.object) for f in tom] == [("lives_in", "Berlin")]  # said twice, stored once
        query = "where does Emma Schmidt live"
        vector = (await HashingEmbedder().embed([query])).vectors[0]
        found = await graph.search(scope, query, vector, 10)
        assert found.facts[0].fact.object == "Porto"
        assert found.entities[0].entity.name == "Emma Schmidt"
        assert (await graph.search(Scope("other-tenant", "alice"), query, vector, 10)).facts == []
    finally:
        await graph.close()
