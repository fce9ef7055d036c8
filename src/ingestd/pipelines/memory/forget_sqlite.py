"""Deleting from the memory graph in SQLite: a message, a session, or a user's whole memory; listing sessions."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from ingestd.pipelines.memory import stored
from ingestd.pipelines.memory.graph import Forgotten, Scope, SessionInfo
from ingestd.pipelines.memory.messages_sqlite import scope_rows


def forget(
    c: sqlite3.Connection, scope: Scope, token: str, session_id: str | None, message_id: str | None
) -> Forgotten:
    c.execute("BEGIN IMMEDIATE")  # after any apply in flight, before the next
    if session_id is None and message_id is None:
        outcome = _forget_user(c, scope, token)
    else:
        where, args = ("session_id=?", session_id) if message_id is None else ("id=?", message_id)
        rows = c.execute(
            f"SELECT seq, id FROM mem_messages WHERE tenant=? AND user_id=? AND {where}", (*scope_rows(scope), args)
        ).fetchall()
        outcome = _forget_messages(c, scope, [r["seq"] for r in rows], {r["id"] for r in rows})
        c.execute("UPDATE mem_users SET version = version + 1 WHERE tenant=? AND user_id=?", scope_rows(scope))
    c.execute("COMMIT")
    return outcome


def _forget_user(c: sqlite3.Connection, scope: Scope, token: str) -> Forgotten:
    messages = c.execute("SELECT count(*) AS n FROM mem_messages WHERE tenant=? AND user_id=?", scope_rows(scope))
    count = int(messages.fetchone()["n"])
    facts = int(
        c.execute("SELECT count(*) AS n FROM mem_facts WHERE tenant=? AND user_id=?", scope_rows(scope)).fetchone()["n"]
    )
    c.execute("DELETE FROM mem_fact_text WHERE mem_fact_text MATCH ?", (f"scope:{token}",))
    c.execute("DELETE FROM mem_message_text WHERE mem_message_text MATCH ?", (f"scope:{token}",))
    for table in stored.USER_TABLES:
        c.execute(f"DELETE FROM {table} WHERE tenant=? AND user_id=?", scope_rows(scope))
    return Forgotten(count, facts, 0)


def _forget_messages(c: sqlite3.Connection, scope: Scope, seqs: list[int], ids: set[str]) -> Forgotten:
    if not seqs:
        return Forgotten(0, 0, 0)
    rows = c.execute(
        "SELECT id, message_ids FROM mem_facts WHERE tenant=? AND user_id=? AND message_ids != '[]'", scope_rows(scope)
    ).fetchall()
    gone, fewer = stored.sources_left(rows, ids)
    for fact_id, kept in fewer.items():
        c.execute("UPDATE mem_facts SET message_ids=? WHERE id=?", (json.dumps(kept), fact_id))
    reopened = 0
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        marks = ",".join("?" * len(chunk))
        c.execute(f"DELETE FROM mem_facts WHERE id IN ({marks})", chunk)
        c.execute(f"DELETE FROM mem_fact_text WHERE fact_id IN ({marks})", chunk)
        c.execute(f"DELETE FROM mem_embeddings WHERE kind='fact' AND owner_id IN ({marks})", chunk)
        reopened += c.execute(
            f"UPDATE mem_facts SET invalid_at=NULL, invalidated_by=NULL WHERE invalidated_by IN ({marks})", chunk
        ).rowcount
    for start in range(0, len(seqs), 500):
        batch = seqs[start : start + 500]
        marks = ",".join("?" * len(batch))
        c.execute(f"DELETE FROM mem_messages WHERE seq IN ({marks})", batch)
        c.execute(f"DELETE FROM mem_message_text WHERE rowid IN ({marks})", batch)
        c.execute(f"DELETE FROM mem_embeddings WHERE kind='message' AND owner_id IN ({marks})", [str(s) for s in batch])
    c.execute(stored.SPEAKERS_WITHOUT_MESSAGES.format("?", "?"), scope_rows(scope))
    return Forgotten(len(seqs), len(gone), reopened)


def sessions(c: sqlite3.Connection, scope: Scope, limit: int, offset: int) -> list[SessionInfo]:
    rows = c.execute(
        """SELECT session_id, count(*) AS messages, min(at) AS first_at, max(at) AS last_at
        FROM mem_messages WHERE tenant=? AND user_id=?
        GROUP BY session_id ORDER BY max(at) DESC, session_id LIMIT ? OFFSET ?""",
        (*scope_rows(scope), limit, offset),
    )
    return [
        SessionInfo(
            r["session_id"],
            int(r["messages"]),
            datetime.fromisoformat(r["first_at"]),
            datetime.fromisoformat(r["last_at"]),
        )
        for r in rows
    ]
