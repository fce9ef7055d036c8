"""The chat messages of the memory graph in SQLite: a table, an FTS5 index (porter stemming, bm25), vectors."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory import stored
from ingestd.pipelines.memory.graph import GraphChanges, Message, Scope
from ingestd.pipelines.memory.stored import MESSAGE_SELECT


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def scope_rows(scope: Scope) -> tuple[str, str]:
    return scope.tenant, scope.user_id


def list_messages(
    c: sqlite3.Connection, scope: Scope, session_id: str | None, limit: int, offset: int
) -> list[Message]:
    where = " AND session_id=?" if session_id is not None else ""
    args = (*scope_rows(scope), *((session_id,) if session_id is not None else ()), limit, offset)
    sql = f"{MESSAGE_SELECT} WHERE tenant=? AND user_id=?{where} ORDER BY at, session_id, idx LIMIT ? OFFSET ?"
    return [message(r) for r in c.execute(sql, args)]


def message(row: sqlite3.Row) -> Message:
    return stored.message(row, datetime.fromisoformat)


def insert_messages(c: sqlite3.Connection, scope: Scope, token: str, ch: GraphChanges, now: str) -> int:
    """Insert the job's messages (a client id already stored is kept as it was); how many were new."""
    added = 0
    c.executemany(
        "INSERT OR IGNORE INTO mem_speakers VALUES (?,?,?)",
        [(scope.tenant, scope.user_id, s) for s in sorted({m.speaker for m in ch.messages})],
    )
    for m in ch.messages:
        cursor = c.execute(
            """INSERT OR IGNORE INTO mem_messages (tenant, user_id, id, session_id, idx, role, speaker, content, at,
            utc_offset, dates, job_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (scope.tenant, scope.user_id, m.id, m.session_id, m.index, m.role, m.speaker, m.content, _ts(m.at),
             stored.utc_offset(m.at), json.dumps(m.dates), ch.job_id, now),
        )  # fmt: skip
        if cursor.rowcount != 1:
            continue
        seq = cursor.lastrowid
        added += 1
        c.execute(
            "INSERT INTO mem_message_text (rowid, scope, speaker, content) VALUES (?,?,?,?)",
            (seq, token, m.speaker, f"{m.content} {' '.join(m.dates)}"),
        )
        if hybrid.has_vector(m.embedding):
            c.execute(
                "INSERT OR REPLACE INTO mem_embeddings VALUES ('message',?,?,?,?,?)",
                (str(seq), scope.tenant, scope.user_id, ch.embedding_model, hybrid.vector_to_bytes(m.embedding)),
            )
    return added


def text_ranking(c: sqlite3.Connection, token: str, terms: list[str]) -> list[str]:
    """Message keys matching any of ``terms``, best bm25 first, among the newest ``RANK_WINDOW`` matches."""
    if not terms:
        return []
    match = f"content:({' OR '.join(_quoted(t) for t in terms)})"
    return ranked_window(c, "mem_message_text", match, token, "bm25(mem_message_text, 0.0, 0.0, 1.0)")


def text_ranking_among(c: sqlite3.Connection, token: str, terms: list[str], keys: list[str]) -> list[str]:
    """Those of ``keys`` matching any of ``terms`` among the newest ``RANK_WINDOW`` matches, best bm25 first
    (bm25 counts over the whole table: the order ``text_ranking`` gives them).

    bm25 is computed for ``keys`` only (about 5 µs a row: 1,000 of them cost more than finding the matches). Not
    a ``rowid IN (keys)`` constraint: FTS5 would run the whole match once per key (270 ms for 200 keys at
    100,000 messages, against 5-8 ms here)."""
    if not terms or not keys:
        return []
    match = f"content:({' OR '.join(_quoted(t) for t in terms)})"
    rows = c.execute(
        f"""SELECT seq FROM (SELECT rowid AS seq, CASE WHEN rowid IN ({",".join("?" * len(keys))})
        THEN bm25(mem_message_text, 0.0, 0.0, 1.0) END AS score FROM mem_message_text
        WHERE mem_message_text MATCH ? AND +scope = ? ORDER BY rowid DESC LIMIT ?)
        WHERE score IS NOT NULL ORDER BY score, seq""",
        (*(int(k) for k in keys), match, token, hybrid.RANK_WINDOW),
    )
    return [str(r["seq"]) for r in rows]


def ranked_window(
    c: sqlite3.Connection, table: str, match: str, token: str, rank: str, key: str = "rowid"
) -> list[str]:
    """``key`` of the best ``CANDIDATES`` by ``rank`` (bm25; ties oldest first) among the newest ``RANK_WINDOW``
    rows of the scope ``token`` matching ``match``.

    bm25 costs a few microseconds per matching row, and a common word matches a large part of a big memory:
    ranking only the newest matches bounds a search's time (the vectors still reach all of it). The scope is
    checked on each row read (``+scope``) rather than matched as a phrase: as a phrase, bm25 would count its
    documents (every row of the user) on each query, for a weight of 0 (5 ms at 100,000 messages).
    """
    rows = c.execute(
        f"""SELECT key FROM (SELECT rowid AS seq, {key} AS key, {rank} AS score FROM {table}
        WHERE {table} MATCH ? AND +scope = ? ORDER BY rowid DESC LIMIT ?) ORDER BY score, seq LIMIT ?""",
        (match, token, hybrid.RANK_WINDOW, hybrid.CANDIDATES),
    )
    return [str(r["key"]) for r in rows]


def _quoted(term: str) -> str:
    return '"' + term.replace('"', "") + '"'


def get_messages(c: sqlite3.Connection, scope: Scope, keys: list[str]) -> list[Message]:
    out: list[Message] = []
    for start in range(0, len(keys), 500):
        chunk = [int(k) for k in keys[start : start + 500]]
        sql = f"{MESSAGE_SELECT} WHERE seq IN ({','.join('?' * len(chunk))}) AND +tenant=? AND +user_id=?"
        out += [message(r) for r in c.execute(sql, (*chunk, scope.tenant, scope.user_id))]
    return out


def messages_with_ids(c: sqlite3.Connection, scope: Scope, ids: list[str]) -> list[Message]:
    out: list[Message] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"{MESSAGE_SELECT} WHERE tenant=? AND user_id=? AND id IN ({','.join('?' * len(chunk))})"
        out += [message(r) for r in c.execute(sql, (scope.tenant, scope.user_id, *chunk))]
    return out


def neighbours(c: sqlite3.Connection, scope: Scope, keys: list[str], width: int) -> list[Message]:
    """The messages at most ``width`` places before or after each of ``keys`` in its session (them included)."""
    out: list[Message] = []
    for start in range(0, len(keys), 500):
        chunk = [int(k) for k in keys[start : start + 500]]
        sql = f"""SELECT DISTINCT n.seq, n.id, n.session_id, n.idx, n.role, n.speaker, n.content, n.at,
            n.utc_offset, n.dates
            FROM mem_messages m JOIN mem_messages n ON n.tenant = m.tenant AND n.user_id = m.user_id
            AND n.session_id = m.session_id AND n.idx BETWEEN m.idx - ? AND m.idx + ?
            WHERE m.seq IN ({",".join("?" * len(chunk))}) AND +m.tenant=? AND +m.user_id=?"""
        out += [message(r) for r in c.execute(sql, (width, width, *chunk, scope.tenant, scope.user_id))]
    return out


def speakers(c: sqlite3.Connection, scope: Scope) -> list[str]:
    rows = c.execute("SELECT speaker FROM mem_speakers WHERE tenant=? AND user_id=?", (scope.tenant, scope.user_id))
    return sorted(r["speaker"] for r in rows)
