"""The memory graph's tables in SQLite (the messages' own are in ``messages_sqlite``), created on first use."""

from __future__ import annotations

import contextlib
import sqlite3

from ingestd.pipelines.memory import messages_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS mem_users (tenant TEXT NOT NULL, user_id TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (tenant, user_id));
CREATE TABLE IF NOT EXISTS mem_applied_jobs (job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    applied_at TEXT NOT NULL, stats TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mem_episodes (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    session_id TEXT NOT NULL, idx INTEGER NOT NULL, content TEXT NOT NULL, started_at TEXT, reference_time TEXT,
    job_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mem_entities (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user_id TEXT NOT NULL,
    name TEXT NOT NULL, type TEXT NOT NULL, summary TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mem_entities_scope ON mem_entities (tenant, user_id);
CREATE TABLE IF NOT EXISTS mem_aliases (tenant TEXT NOT NULL, user_id TEXT NOT NULL, alias TEXT NOT NULL,
    entity_id TEXT NOT NULL, PRIMARY KEY (tenant, user_id, alias));
CREATE TABLE IF NOT EXISTS mem_facts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, subject_id TEXT NOT NULL, predicate TEXT NOT NULL, object_id TEXT,
    object TEXT NOT NULL, sentence TEXT NOT NULL, valid_at TEXT, invalid_at TEXT, invalidated_by TEXT,
    created_at TEXT NOT NULL, episode_id TEXT NOT NULL, job_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mem_facts_subject ON mem_facts (tenant, user_id, subject_id);
CREATE INDEX IF NOT EXISTS mem_facts_object ON mem_facts (tenant, user_id, object_id);
CREATE TABLE IF NOT EXISTS mem_embeddings (kind TEXT NOT NULL, owner_id TEXT NOT NULL, tenant TEXT NOT NULL,
    user_id TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (kind, owner_id));
CREATE INDEX IF NOT EXISTS mem_embeddings_scope ON mem_embeddings (tenant, user_id, kind, model);
CREATE VIRTUAL TABLE IF NOT EXISTS mem_fact_text USING fts5(scope, triple, sentence, fact_id UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2');
"""


def migrate(c: sqlite3.Connection) -> None:
    """Create the ``mem_*`` tables if absent, and add the columns later versions added."""
    c.executescript(SCHEMA + messages_sqlite.SCHEMA)
    columns = {r[1] for r in c.execute("PRAGMA table_info(mem_facts)")}
    if "message_ids" not in columns:  # a graph written before facts kept their messages
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
            c.execute("ALTER TABLE mem_facts ADD COLUMN message_ids TEXT NOT NULL DEFAULT '[]'")
