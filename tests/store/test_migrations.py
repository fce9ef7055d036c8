"""The schema that the Alembic migrations make (``alembic upgrade head``: what ``store.migrate()`` and
``ingestd migrate`` run) on SQLite and on PostgreSQL is the one their revisions declare (``store/schema.py``
replays them onto a ``MetaData``): tables, columns, types, nullability, server defaults and indexes. A change made
behind Alembic's back (raw SQL DDL) or a dialect that makes something else fails here, naming the table and
column (docs/architecture.md, "Add a column"). The columns the typed rows select must exist too."""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ingestd.pipelines.memory import graph_sqlite
from ingestd.pipelines.memory.embedder import hash_embed
from ingestd.pipelines.memory.graph import GraphChanges, NewEpisode, NewFact, Scope, open_graph_store
from ingestd.store import migrations, open_store, records, schema, sqlite_path

memory_graph = importlib.import_module("ingestd.store.migrations.versions.0007_memory_graph")


def _drift(connection: sa.Connection, declared: sa.MetaData) -> list[str]:
    opts = {"compare_type": True, "compare_server_default": True, "include_name": _not_full_text}
    context = MigrationContext.configure(connection, opts=opts)
    return [_describe(diff) for diff in compare_metadata(context, declared)]


def _not_full_text(name: str | None, type_: str, _parent: Any) -> bool:
    """SQLite's FTS5 tables (virtual, made by raw SQL) and their shadow tables are not the replayed schema."""
    return not (type_ == "table" and name is not None and name.startswith(tuple(memory_graph.FTS_TABLES)))


def _describe(diff: Any) -> str:
    """One difference, as what the migrations made versus what ``schema.py`` declares."""
    if isinstance(diff, list):  # alembic groups the modifications of one column
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    if kind in ("add_table", "remove_table"):
        return f"{kind} {rest[0].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {rest[1]}.{rest[2].name}"
    if kind in ("add_index", "remove_index"):
        return f"{kind} {rest[0].name} on {rest[0].table.name}"
    if kind.startswith("modify_"):
        _, table, column, _, migrated, declared = rest
        return f"{kind} {table}.{column}: the migrations make {migrated!r}, the revisions declare {declared!r}"
    return repr(diff)


async def _live_drift(database_url: str, declared: sa.MetaData | None = None) -> list[str]:
    sqlite = database_url.startswith("sqlite")
    declared = declared or schema.declared("sqlite" if sqlite else "postgresql")
    if sqlite:
        engine = sa.create_engine(f"sqlite:///{sqlite_path(database_url)}", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                return _drift(connection, declared)
        finally:
            engine.dispose()
    async_engine = create_async_engine(migrations.sqlalchemy_pg_url(database_url), poolclass=NullPool)
    try:
        async with async_engine.connect() as connection:
            return await connection.run_sync(_drift, declared)
    finally:
        await async_engine.dispose()


async def test_the_migrations_make_the_declared_schema(database_url: str) -> None:
    drift = await _live_drift(database_url)
    assert drift == [], "alembic upgrade head and the revisions disagree:\n" + "\n".join(drift)


async def test_a_column_missing_from_the_migrations_is_named(database_url: str) -> None:
    """The check itself: a column declared but not in the database is reported by name."""
    declared = schema.declared("sqlite" if database_url.startswith("sqlite") else "postgresql")
    declared.tables["jobs"].append_column(sa.Column("drift_probe", sa.Text))
    declared.tables["mem_facts"].append_column(sa.Column("drift_probe", sa.Text))
    assert sorted(await _live_drift(database_url, declared)) == [
        "add_column jobs.drift_probe",
        "add_column mem_facts.drift_probe",
    ]


def test_the_typed_rows_select_columns_the_migrations_make() -> None:
    tables = schema.declared().tables
    for row, table in [
        (records.JobRow, "jobs"),
        (records.StepRow, "steps"),
        (records.EventRow, "events"),
        (records.ApiKeyRow, "api_keys"),
        (records.WorkerRow, "workers"),
    ]:
        assert set(row._fields) <= set(tables[table].c.keys()), (
            row.__name__,
            set(row._fields) - set(tables[table].c.keys()),
        )


def test_the_head_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    assert migrations.head_revision() == scripts.get_current_head()


def test_a_store_at_head_opens_without_importing_alembic(database_url: str) -> None:
    """Every ingestd process opens a store: at head, it starts without Alembic and SQLAlchemy (about half of its
    import time)."""
    program = (
        "import asyncio, sys\n"
        "from ingestd.store import open_store\n"
        "async def main():\n"
        f"    await (await open_store({database_url!r})).close()\n"
        "asyncio.run(main())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'sqlalchemy'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# The memory graph as the stores made it before its tables were under the migrations (0007), in its oldest shape
# (before facts kept their messages, embeddings their sequence number and snapshots their token): their own
# CREATE … IF NOT EXISTS, run on each open.
_OLD_GRAPH_SQLITE = """
CREATE TABLE mem_users (tenant TEXT NOT NULL, user_id TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (tenant, user_id));
CREATE TABLE mem_applied_jobs (job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    applied_at TEXT NOT NULL, stats TEXT NOT NULL);
CREATE TABLE mem_episodes (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    session_id TEXT NOT NULL, idx INTEGER NOT NULL, content TEXT NOT NULL, started_at TEXT, reference_time TEXT,
    job_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE mem_entities (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, summary TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX mem_entities_scope ON mem_entities (tenant, user_id);
CREATE TABLE mem_aliases (tenant TEXT NOT NULL, user_id TEXT NOT NULL, alias TEXT NOT NULL,
    entity_id TEXT NOT NULL, PRIMARY KEY (tenant, user_id, alias));
CREATE TABLE mem_facts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, subject_id TEXT NOT NULL, predicate TEXT NOT NULL, object_id TEXT,
    object TEXT NOT NULL, sentence TEXT NOT NULL, valid_at TEXT, invalid_at TEXT, invalidated_by TEXT,
    created_at TEXT NOT NULL, episode_id TEXT NOT NULL, job_id TEXT NOT NULL);
CREATE INDEX mem_facts_subject ON mem_facts (tenant, user_id, subject_id);
CREATE INDEX mem_facts_object ON mem_facts (tenant, user_id, object_id);
CREATE TABLE mem_embeddings (kind TEXT NOT NULL, owner_id TEXT NOT NULL, tenant TEXT NOT NULL,
    user_id TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (kind, owner_id));
CREATE INDEX mem_embeddings_scope ON mem_embeddings (tenant, user_id, kind, model);
CREATE VIRTUAL TABLE mem_fact_text USING fts5(scope, triple, sentence, fact_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO mem_users VALUES ('acme', 'alice', 1, '2026-03-01T00:00:00.000000+00:00');
INSERT INTO mem_entities VALUES ('emma', 'acme', 'alice', 'Emma Schmidt', 'person', '',
    '2026-03-01T00:00:00.000000+00:00', '2026-03-01T00:00:00.000000+00:00');
INSERT INTO mem_facts (id, tenant, user_id, subject_id, predicate, object, sentence, valid_at, created_at, episode_id,
    job_id) VALUES ('old-f0', 'acme', 'alice', 'emma', 'lives_in', 'Lisbon', 'Emma Schmidt lives in Lisbon.',
    '2026-03-01T00:00:00.000000+00:00', '2026-03-01T00:00:00.000000+00:00', 'old-ep0', 'old');
"""
_OLD_GRAPH_POSTGRES = """
CREATE TABLE mem_users (tenant text NOT NULL, user_id text NOT NULL, version bigint NOT NULL,
    updated_at timestamptz NOT NULL, PRIMARY KEY (tenant, user_id));
CREATE TABLE mem_applied_jobs (job_id text PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL,
    applied_at timestamptz NOT NULL, stats text NOT NULL);
CREATE TABLE mem_episodes (id text PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL,
    session_id text NOT NULL, idx integer NOT NULL, content text NOT NULL, started_at timestamptz,
    reference_time timestamptz, job_id text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE mem_entities (id text PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL,
    name text NOT NULL, type text NOT NULL, summary text NOT NULL, created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL);
CREATE INDEX mem_entities_scope ON mem_entities (tenant, user_id);
CREATE TABLE mem_aliases (tenant text NOT NULL, user_id text NOT NULL, alias text NOT NULL,
    entity_id text NOT NULL, PRIMARY KEY (tenant, user_id, alias));
CREATE TABLE mem_facts (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, tenant text NOT NULL,
    user_id text NOT NULL, subject_id text NOT NULL, predicate text NOT NULL, object_id text, object text NOT NULL,
    sentence text NOT NULL, valid_at timestamptz, invalid_at timestamptz, invalidated_by text,
    created_at timestamptz NOT NULL, episode_id text NOT NULL, job_id text NOT NULL, triple_text text NOT NULL,
    sentence_text text NOT NULL, tsv tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', triple_text), 'A')
    || setweight(to_tsvector('simple', sentence_text), 'B')) STORED);
CREATE INDEX mem_facts_subject ON mem_facts (tenant, user_id, subject_id);
CREATE INDEX mem_facts_object ON mem_facts (tenant, user_id, object_id);
CREATE INDEX mem_facts_tsv ON mem_facts USING gin (tsv);
CREATE TABLE mem_embeddings (kind text NOT NULL, owner_id text NOT NULL, tenant text NOT NULL,
    user_id text NOT NULL, model text NOT NULL, vector bytea NOT NULL, PRIMARY KEY (kind, owner_id));
CREATE INDEX mem_embeddings_scope ON mem_embeddings (tenant, user_id, kind, model);
CREATE TABLE mem_vector_snapshots (tenant text NOT NULL, user_id text NOT NULL, kind text NOT NULL,
    model text NOT NULL, last_seq bigint NOT NULL, last_owner text NOT NULL, version bigint NOT NULL,
    ids text NOT NULL, matrix bytea NOT NULL, PRIMARY KEY (tenant, user_id, kind, model));
INSERT INTO mem_users VALUES ('acme', 'alice', 1, '2026-03-01T00:00:00+00:00');
INSERT INTO mem_entities VALUES ('emma', 'acme', 'alice', 'Emma Schmidt', 'person', '', '2026-03-01T00:00:00+00:00',
    '2026-03-01T00:00:00+00:00');
INSERT INTO mem_facts (id, tenant, user_id, subject_id, predicate, object, sentence, valid_at, created_at, episode_id,
    job_id, triple_text, sentence_text) VALUES ('old-f0', 'acme', 'alice', 'emma', 'lives_in', 'Lisbon',
    'Emma Schmidt lives in Lisbon.', '2026-03-01T00:00:00+00:00', '2026-03-01T00:00:00+00:00', 'old-ep0', 'old',
    'Emma Schmidt lives in Lisbon', 'Emma Schmidt lives in Lisbon.');
"""

# What the stores added later, up to the last version before 0007: the chat messages, and the columns above.
_LATER_GRAPH_SQLITE = """
ALTER TABLE mem_facts ADD COLUMN message_ids TEXT NOT NULL DEFAULT '[]';
CREATE TABLE mem_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL,
    user_id TEXT NOT NULL, id TEXT NOT NULL, session_id TEXT NOT NULL, idx INTEGER NOT NULL, role TEXT NOT NULL,
    speaker TEXT NOT NULL, content TEXT NOT NULL, at TEXT NOT NULL, dates TEXT NOT NULL, job_id TEXT NOT NULL,
    created_at TEXT NOT NULL, UNIQUE (tenant, user_id, id));
CREATE TABLE mem_speakers (tenant TEXT NOT NULL, user_id TEXT NOT NULL, speaker TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id, speaker));
CREATE INDEX mem_messages_session ON mem_messages (tenant, user_id, session_id, idx);
CREATE VIRTUAL TABLE mem_message_text USING fts5(scope, speaker, content,
    tokenize = 'porter unicode61 remove_diacritics 2');
"""
_LATER_GRAPH_POSTGRES = """
ALTER TABLE mem_embeddings ADD COLUMN seq bigserial;
CREATE INDEX mem_embeddings_seq ON mem_embeddings (tenant, user_id, kind, model, seq);
CREATE TABLE mem_messages (seq bigserial PRIMARY KEY, tenant text NOT NULL, user_id text NOT NULL,
    id text NOT NULL, session_id text NOT NULL, idx integer NOT NULL, role text NOT NULL, speaker text NOT NULL,
    content text NOT NULL, at timestamptz NOT NULL, dates text NOT NULL, job_id text NOT NULL,
    created_at timestamptz NOT NULL, search_text text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', search_text)) STORED, UNIQUE (tenant, user_id, id));
CREATE INDEX mem_messages_session ON mem_messages (tenant, user_id, session_id, idx);
CREATE INDEX mem_messages_tsv ON mem_messages USING gin (tsv);
CREATE TABLE mem_speakers (tenant text NOT NULL, user_id text NOT NULL, speaker text NOT NULL,
    PRIMARY KEY (tenant, user_id, speaker));
ALTER TABLE mem_facts ADD COLUMN message_ids text NOT NULL DEFAULT '[]';
ALTER TABLE mem_vector_snapshots ADD COLUMN token text NOT NULL DEFAULT '';
"""


async def _at_0006_with_an_old_graph(url: str, later: bool) -> None:
    """A database of the job store at 0006 in which the memory stores had made their graph, with one fact."""
    config = migrations.alembic_config()
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
        try:
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "0006")
        finally:
            engine.dispose()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.executescript(_OLD_GRAPH_SQLITE + (_LATER_GRAPH_SQLITE if later else ""))
            token = graph_sqlite.scope_token(Scope("acme", "alice"))
            conn.execute(
                "INSERT INTO mem_fact_text VALUES (?, 'Emma Schmidt lives in Lisbon', ?, 'old-f0')",
                (token, "Emma Schmidt lives in Lisbon."),
            )
            conn.commit()
        return
    async_engine = create_async_engine(migrations.sqlalchemy_pg_url(url), poolclass=NullPool)
    try:
        async with async_engine.begin() as connection:
            config.attributes["connection"] = connection

            def upgrade(sync: sa.Connection) -> None:
                config.attributes["connection"] = sync
                command.upgrade(config, "0006")

            await connection.run_sync(upgrade)
    finally:
        await async_engine.dispose()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_OLD_GRAPH_POSTGRES + (_LATER_GRAPH_POSTGRES if later else ""))
    finally:
        await conn.close()


@pytest.fixture
async def empty_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    server = os.environ.get("INGESTD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"ingestd_t_{os.urandom(5).hex()}"
    admin = await asyncpg.connect(server, timeout=5)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.mark.parametrize("shape", ["oldest", "latest"])
async def test_a_graph_the_stores_made_before_0007_is_upgraded_in_place(empty_database_url: str, shape: str) -> None:
    """A database whose memory graph an earlier version made (its tables in their oldest shape, or as the last
    version before 0007 left them) is upgraded by the migrations to exactly the declared schema, its rows kept and
    read, and new ones written beside them."""
    url = empty_database_url
    await _at_0006_with_an_old_graph(url, later=shape == "latest")
    store = await open_store(url)  # migrates: the job store's tables and the graph's to head
    await store.close()
    assert await _live_drift(url) == []
    graph = await open_graph_store(url)
    try:
        alice = Scope("acme", "alice")
        found = await graph.search(alice, "Emma Lisbon", None, 5)
        assert [(h.fact.id, h.fact.object, h.fact.message_ids) for h in found.facts] == [("old-f0", "Lisbon", ())]
        sentence = "Emma Schmidt lives in Porto."
        changes = GraphChanges(
            job_id="new",
            embedding_model="hashing-ngram-256-v1",
            episodes=[NewEpisode("new-ep0", "s", 0, sentence, None, None)],
            facts=[NewFact("new-f0", "emma", "lives_in", None, "Porto", sentence, None, None, "new-ep0",
                           hash_embed(sentence), ["s:0"])],
        )  # fmt: skip
        assert (await graph.apply(alice, changes)).applied
        found = await graph.search(alice, "Emma Porto", hash_embed(sentence), 5)
        assert found.facts[0].fact.id == "new-f0" and found.facts[0].fact.message_ids == ("s:0",)
    finally:
        await graph.close()


def test_a_store_and_graph_at_head_open_without_ddl_or_alembic(database_url: str) -> None:
    """The memory graph opened beside a migrated job store runs no DDL (the migrations made its tables): it
    starts without Alembic and SQLAlchemy, and the database is as the migrations left it."""
    program = (
        "import asyncio, sys\n"
        "from ingestd.store import open_store\n"
        "from ingestd.pipelines.memory.graph import open_graph_store\n"
        "async def main():\n"
        f"    await (await open_store({database_url!r})).close()\n"
        f"    await (await open_graph_store({database_url!r})).close()\n"
        "asyncio.run(main())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'sqlalchemy'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
