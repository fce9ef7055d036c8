"""A restarted process reads a user's vectors from the snapshot beside the SQLite file, catches up with the rows
applied since, and ignores a snapshot that belongs to another database at the same path."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from memory_support import migrated

from ingestd.pipelines.memory import search, snapshots_postgres, vector_snapshot
from ingestd.pipelines.memory.embedder import hash_embed
from ingestd.pipelines.memory.graph import GraphChanges, NewEntity, NewEpisode, NewFact, Scope, open_graph_store

ALICE = Scope("acme", "alice")


@pytest.fixture(autouse=True)
def _host_copies_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's local copies of the snapshots go to this test's folder, not the machine's temporary one."""
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "host"))
    (tmp_path / "host").mkdir()


WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def _facts(job: str, places: list[str], new_entity: bool = True) -> GraphChanges:
    entities = [NewEntity("emma", "Emma Schmidt", "person", "", hash_embed("Emma Schmidt"))] if new_entity else []
    facts = [
        NewFact(f"{job}-f{i}", "emma", "visited", None, p, f"Emma visited {p}.", WHEN, None, f"{job}-ep",
                hash_embed(f"Emma visited {p}."))
        for i, p in enumerate(places)
    ]  # fmt: skip
    episode = NewEpisode(f"{job}-ep", "s", 0, job, WHEN, WHEN)
    return GraphChanges(job, "hashing-ngram-256-v1", episodes=[episode], entities=entities, facts=facts)


async def _snapshot_written(path: Path) -> None:
    for _ in range(200):
        if list(path.glob("*.json")):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no snapshot in {path}")


async def _top(url: str, text: str) -> str:
    graph = await open_graph_store(url)
    try:
        found = await graph.search(ALICE, "", hash_embed(text), 1)  # vectors only
        return found.facts[0].fact.object
    finally:
        await graph.close()


async def test_a_new_store_reads_the_snapshot_and_the_rows_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    url = await migrated(f"sqlite:///{tmp_path}/graph.db")
    graph = await open_graph_store(url)
    await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto", "Osaka"]))
    assert (await graph.search(ALICE, "", hash_embed("Emma visited Osaka."), 1)).facts[0].fact.object == "Osaka"
    await _snapshot_written(tmp_path / "graph.db.vectors")
    await graph.apply(ALICE, _facts("j2", ["Nairobi"], new_entity=False))  # after the snapshot
    await graph.close()
    assert await _top(url, "Emma visited Porto.") == "Porto"
    assert await _top(url, "Emma visited Nairobi.") == "Nairobi"


async def test_a_snapshot_of_another_database_at_the_same_path_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    url = await migrated(f"sqlite:///{tmp_path}/graph.db")
    graph = await open_graph_store(url)
    await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto", "Osaka"]))
    await graph.search(ALICE, "", hash_embed("Emma visited Osaka."), 1)
    await _snapshot_written(tmp_path / "graph.db.vectors")
    await graph.close()
    for name in ("graph.db", "graph.db-wal", "graph.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    graph = await open_graph_store(await migrated(url))  # a new database, the old snapshot still beside it
    await graph.apply(ALICE, _facts("k1", ["Toronto", "Berlin", "Zurich"]))
    await graph.close()
    assert await _top(url, "Emma visited Berlin.") == "Berlin"


async def test_deleting_in_a_users_memory_deletes_their_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    url = await migrated(f"sqlite:///{tmp_path}/graph.db")
    graph = await open_graph_store(url)
    try:
        await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto", "Osaka"]))
        await graph.search(ALICE, "", hash_embed("Emma visited Osaka."), 1)
        await _snapshot_written(tmp_path / "graph.db.vectors")
        await graph.forget(ALICE, session_id="s")
        assert list((tmp_path / "graph.db.vectors").iterdir()) == []
    finally:
        await graph.close()


async def test_postgresql_keeps_the_snapshot_in_the_database(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on both databases through the store: a new store object (a restarted process) finds the vectors
    and the rows applied after the snapshot; a deletion removes the snapshot (PostgreSQL: its row)."""
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    graph = await open_graph_store(database_url)
    await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto", "Osaka"]))
    await graph.search(ALICE, "", hash_embed("Emma visited Osaka."), 1)
    await graph.close()  # PostgreSQL: waits for the snapshot being written; SQLite: it is written in a thread
    if backend == "sqlite":
        await _snapshot_written(Path(f"{database_url.split(':///', 1)[1]}.vectors"))
    else:
        assert await _pg_snapshots(database_url) == 2  # the facts' and the entities'
    graph = await open_graph_store(database_url)
    await graph.apply(ALICE, _facts("j2", ["Nairobi"], new_entity=False))
    await graph.close()
    assert await _top(database_url, "Emma visited Porto.") == "Porto"
    assert await _top(database_url, "Emma visited Nairobi.") == "Nairobi"
    graph = await open_graph_store(database_url)
    await graph.forget(ALICE, session_id="s")
    await graph.close()
    if backend == "postgres":
        assert await _pg_snapshots(database_url) == 0


async def _pg_snapshots(url: str) -> int:
    import asyncpg

    c = await asyncpg.connect(url)
    try:
        return int(await c.fetchval("SELECT count(*) FROM mem_vector_snapshots"))
    finally:
        await c.close()


async def test_a_large_apply_leaves_a_snapshot_for_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bulk import: its writer reads the new vectors and saves them, so no first search of another process
    # reads them row by row.
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    monkeypatch.setattr(vector_snapshot, "CATCH_UP_ROWS", 3)
    url = await migrated(f"sqlite:///{tmp_path}/graph.db")
    graph = await open_graph_store(url)
    await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto"]))  # small: no snapshot
    await asyncio.sleep(0.2)
    assert not list((tmp_path / "graph.db.vectors").glob("*.json"))
    await graph.apply(ALICE, _facts("j2", ["Osaka", "Nairobi", "Toronto"], new_entity=False))  # no search
    await _snapshot_written(tmp_path / "graph.db.vectors")
    await graph.close()
    assert await _top(url, "Emma visited Porto.") == "Porto"
    assert await _top(url, "Emma visited Toronto.") == "Toronto"


async def test_postgresql_maps_this_hosts_copy_and_drops_a_copy_the_database_no_longer_has(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL keeps its snapshots in the database, and a copy on each host")
    monkeypatch.setattr(vector_snapshot, "MIN_ROWS", 1)
    graph = await open_graph_store(database_url)
    await graph.apply(ALICE, _facts("j1", ["Lisbon", "Porto", "Osaka"]))
    await graph.search(ALICE, "", hash_embed("Emma visited Osaka."), 1)
    await graph.close()
    local = snapshots_postgres.local_dir(database_url)
    assert local is not None
    for _ in range(200):  # the facts' and the entities' copies, written in threads
        if len(list(local.glob("*.json"))) == 2:
            break
        await asyncio.sleep(0.05)

    def fetched(row: object) -> None:
        raise AssertionError("the stored bytea was read although this host has the copy")

    with monkeypatch.context() as patch:
        patch.setattr(snapshots_postgres, "_snapshot", fetched)
        assert await _top(database_url, "Emma visited Porto.") == "Porto"
    import asyncpg

    old = _tokens(local)
    c = await asyncpg.connect(database_url)
    try:  # another host deleted in Alice's memory: the stored snapshots are gone
        await c.execute("DELETE FROM mem_vector_snapshots")
    finally:
        await c.close()
    with monkeypatch.context() as patch:
        patch.setattr(vector_snapshot, "save_soon", lambda *args: None)  # no new copy of the new snapshot
        assert await _top(database_url, "Emma visited Porto.") == "Porto"  # read from the rows
    assert len(old) == 2
    assert _tokens(local) == set()  # the old copies were deleted, not used


def _tokens(folder: Path) -> set[str]:
    return {json.loads(p.read_text())["token"] for p in folder.glob("*.json")}


def test_a_large_snapshot_carries_its_int8_copy_and_an_older_one_gains_it(tmp_path: Path) -> None:
    """A restarted process maps the int8 copy a search scans instead of building it again (a second of both cores
    per 100,000 rows, taken from the requests after its first recall); a snapshot saved without one gets it once."""
    folder, rows = tmp_path / "graph.db.vectors", search.EXACT_ROWS
    matrix = np.random.default_rng(5).standard_normal((rows, 8)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    snapshot = vector_snapshot.Snapshot([f"f{i}" for i in range(rows)], matrix, rows, f"f{rows - 1}", 3)
    meta = vector_snapshot.path_for(folder, ALICE, "fact", "m")
    vector_snapshot._save(folder, meta, snapshot)  # what save_soon runs in its thread
    loaded = vector_snapshot.load(folder, ALICE, "fact", "m")
    assert loaded is not None and loaded.quantized is not None
    expected = search.Quantized.of(matrix)
    assert np.array_equal(loaded.quantized.codes, expected.codes)
    assert np.array_equal(loaded.quantized.scales, expected.scales)

    older = json.loads(meta.read_text())  # as saved before snapshots had the int8 copy
    for key in ("codes", "scales"):
        (folder / older.pop(key)).unlink()
    meta.write_text(json.dumps(older))
    first = vector_snapshot.load(folder, ALICE, "fact", "m")
    assert first is not None and first.quantized is None
    for _ in range(200):  # written again in a thread, with the copy
        if "codes" in json.loads(meta.read_text()):
            break
        time.sleep(0.05)
    again = vector_snapshot.load(folder, ALICE, "fact", "m")
    assert again is not None and again.quantized is not None
    assert np.array_equal(again.quantized.codes, expected.codes)
    vector_snapshot.forget_one(folder, ALICE, "fact", "m")
    assert list(folder.iterdir()) == []
