"""The GraphStore contract on SQLite and PostgreSQL: apply once per job, scoping, history, hybrid search."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from memory_support import migrated

from ingestd import errors
from ingestd.pipelines.memory.embedder import hash_embed
from ingestd.pipelines.memory.graph import (
    GraphChanges,
    GraphStore,
    Invalidation,
    NewAlias,
    NewEntity,
    NewEpisode,
    NewFact,
    NewMessage,
    Scope,
    open_graph_store,
)

PG = os.environ.get("INGESTD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ALICE = Scope("acme", "alice")
T1 = datetime(2026, 3, 1, tzinfo=UTC)
T2 = datetime(2026, 6, 1, tzinfo=UTC)


async def _pg_database() -> str:
    try:
        admin = await asyncpg.connect(PG, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"ingestd_mem_{os.urandom(5).hex()}"
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    return PG.rsplit("/", 1)[0] + "/" + name


async def _drop(url: str) -> None:
    admin = await asyncpg.connect(PG, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def graph(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GraphStore]:
    url = f"sqlite:///{tmp_path}/graph.db" if request.param == "sqlite" else await _pg_database()
    store = await open_graph_store(await migrated(url))
    try:
        yield store
    finally:
        await store.close()
        if request.param == "postgres":
            await _drop(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_graph_on_a_database_not_migrated_says_to_migrate_it(backend: str, tmp_path: Path) -> None:
    """The graph runs no DDL: on a database the migrations have not made its tables in, opening it fails with
    what to do."""
    url = f"sqlite:///{tmp_path}/bare.db" if backend == "sqlite" else await _pg_database()
    try:
        with pytest.raises(errors.StoreUnavailable, match="ingestd migrate"):
            await open_graph_store(url)
        graph = await open_graph_store(await migrated(url))
        assert not await graph.user_exists(ALICE)
        await graph.close()
    finally:
        if backend == "postgres":
            await _drop(url)


def _changes(
    job: str, *, lives: str, when: datetime, close: str | None = None, new_entity: bool = True
) -> GraphChanges:
    entities = (
        [NewEntity("emma", "Emma Schmidt", "person", "a friend", hash_embed("Emma Schmidt"))] if new_entity else []
    )
    sentence = f"Emma Schmidt lives in {lives}."
    return GraphChanges(
        job_id=job,
        embedding_model="hashing-ngram-256-v1",
        episodes=[NewEpisode(f"{job}-ep0", "s", 0, sentence, when, when)],
        entities=entities,
        aliases=[NewAlias("emma", "emma schmidt")] if new_entity else [NewAlias("emma", "schmidt")],
        facts=[
            NewFact(
                f"{job}-f0", "emma", "lives_in", None, lives, sentence, when, None, f"{job}-ep0", hash_embed(sentence)
            )
        ],
        invalidations=[Invalidation(close, when, f"{job}-f0")] if close else [],
        stats={"facts_added": 1},
    )


async def test_apply_is_once_per_job_and_keeps_history(graph: GraphStore) -> None:
    first = await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    again = await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    assert (first.applied, again.applied, again.stats) == (True, False, {"facts_added": 1})
    await graph.apply(ALICE, _changes("j2", lives="Porto", when=T2, close="j1-f0", new_entity=False))
    facts = await graph.entity_facts(ALICE, "emma")
    assert [(f.object, f.valid_at, f.invalid_at) for f in facts] == [("Lisbon", T1, T2), ("Porto", T2, None)]
    assert [f.object for f in await graph.current_facts(ALICE, ["emma"])] == ["Porto"]
    known = await graph.known_entities(ALICE)
    assert [(k.name, k.aliases) for k in known] == [("Emma Schmidt", ("emma schmidt", "schmidt"))]
    entity = await graph.get_entity(ALICE, "emma")
    assert entity is not None and entity.name == "Emma Schmidt"


async def test_forgetting_a_session_forgets_a_speaker_left_without_messages(graph: GraphStore) -> None:
    def said(session: str, speaker: str) -> GraphChanges:
        message = NewMessage(f"{session}:0", session, 0, "user", speaker, f"{speaker} was here.", T1, [], None)
        return GraphChanges(f"job-{session}", "hashing-ngram-256-v1", messages=[message])

    for session, speaker in [("s1", "Caroline"), ("s2", "Melanie"), ("s3", "Caroline")]:
        await graph.apply(ALICE, said(session, speaker))
    await graph.forget(ALICE, session_id="s2")
    await graph.forget(ALICE, message_id="s3:0")
    assert sorted(await graph.speakers(ALICE)) == ["Caroline"]  # Melanie's only session went; Caroline spoke in s1


async def test_a_refused_write_is_store_rejected_and_changes_nothing(graph: GraphStore) -> None:
    """A write the database refuses for its data (here an entity id taken) fails the same way every time: it is
    ``StoreRejected`` (the step fails rather than being retried), and the transaction leaves nothing behind."""
    await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    with pytest.raises(errors.StoreRejected):
        await graph.apply(ALICE, _changes("j2", lives="Porto", when=T2))
    assert [f.object for f in await graph.entity_facts(ALICE, "emma")] == ["Lisbon"]
    assert (await graph.apply(ALICE, _changes("j2", lives="Porto", when=T2, new_entity=False))).applied


async def test_every_read_is_scoped_to_tenant_and_user(graph: GraphStore) -> None:
    await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    for other in (Scope("acme", "bob"), Scope("other", "alice")):
        assert await graph.get_entity(other, "emma") is None
        assert await graph.entity_facts(other, "emma") == []
        assert await graph.known_entities(other) == []
        assert not await graph.user_exists(other)
        found = await graph.search(other, "Emma Lisbon", hash_embed("Emma Lisbon"), 10)
        assert (found.facts, found.entities) == ([], [])
    assert await graph.user_exists(ALICE)


async def test_search_fuses_text_and_vectors_current_first(graph: GraphStore) -> None:
    await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    await graph.apply(ALICE, _changes("j2", lives="Porto", when=T2, close="j1-f0", new_entity=False))
    found = await graph.search(ALICE, "where does Emma live", hash_embed("where does Emma live"), 10)
    assert [(h.fact.object, h.fact.current) for h in found.facts] == [("Porto", True), ("Lisbon", False)]
    assert [h.entity.name for h in found.entities] == ["Emma Schmidt"]
    by_text_only = await graph.search(ALICE, "Lisbon", None, 10)
    assert [h.fact.object for h in by_text_only.facts] == ["Lisbon"]


async def test_vector_search_sees_facts_applied_after_it_was_warmed(graph: GraphStore) -> None:
    await graph.apply(ALICE, _changes("j1", lives="Lisbon", when=T1))
    query = hash_embed("Emma Schmidt lives in Porto.")
    before = await graph.search(ALICE, "", query, 10)  # vectors only; loads the user's matrix
    await graph.apply(ALICE, _changes("j2", lives="Porto", when=T2, close="j1-f0", new_entity=False))
    after = await graph.search(ALICE, "", query, 10)
    assert [h.fact.object for h in before.facts] == ["Lisbon"]
    assert [(h.fact.object, h.fact.current) for h in after.facts] == [("Porto", True), ("Lisbon", False)]
