"""Deleting from the memory graph in PostgreSQL: a message, a session, or a user's whole memory; listing sessions."""

from __future__ import annotations

import json

import asyncpg

from ingestd.pipelines.memory import stored
from ingestd.pipelines.memory.graph import Forgotten, Scope, SessionInfo


async def forget(c: asyncpg.Connection, scope: Scope, session_id: str | None, message_id: str | None) -> Forgotten:
    t, u = scope.tenant, scope.user_id
    async with c.transaction():
        # The lock every apply of this user holds: a deletion runs between two applies, never inside one.
        await c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"memory:{t}/{u}")
        if session_id is None and message_id is None:
            return await _forget_user(c, scope)
        where, arg = ("session_id=$3", session_id) if message_id is None else ("id=$3", message_id)
        rows = await c.fetch(f"SELECT seq, id FROM mem_messages WHERE tenant=$1 AND user_id=$2 AND {where}", t, u, arg)
        outcome = await _forget_messages(c, scope, [r["seq"] for r in rows], {r["id"] for r in rows})
        await c.execute("UPDATE mem_users SET version = version + 1 WHERE tenant=$1 AND user_id=$2", t, u)
        return outcome


async def _forget_user(c: asyncpg.Connection, scope: Scope) -> Forgotten:
    t, u = scope.tenant, scope.user_id
    messages = await c.fetchval("SELECT count(*) FROM mem_messages WHERE tenant=$1 AND user_id=$2", t, u)
    facts = await c.fetchval("SELECT count(*) FROM mem_facts WHERE tenant=$1 AND user_id=$2", t, u)
    for table in stored.USER_TABLES:
        await c.execute(f"DELETE FROM {table} WHERE tenant=$1 AND user_id=$2", t, u)
    return Forgotten(int(messages), int(facts), 0)


async def _forget_messages(c: asyncpg.Connection, scope: Scope, seqs: list[int], ids: set[str]) -> Forgotten:
    if not seqs:
        return Forgotten(0, 0, 0)
    t, u = scope.tenant, scope.user_id
    rows = await c.fetch(
        "SELECT id, message_ids FROM mem_facts WHERE tenant=$1 AND user_id=$2 AND message_ids != '[]'", t, u
    )
    gone, fewer = stored.sources_left(rows, ids)
    for fact_id, kept in fewer.items():
        await c.execute("UPDATE mem_facts SET message_ids=$1 WHERE id=$2", json.dumps(kept), fact_id)
    await c.execute("DELETE FROM mem_facts WHERE id = ANY($1)", gone)
    await c.execute("DELETE FROM mem_embeddings WHERE kind='fact' AND owner_id = ANY($1)", gone)
    reopened = await c.execute(
        "UPDATE mem_facts SET invalid_at=NULL, invalidated_by=NULL WHERE invalidated_by = ANY($1)", gone
    )
    await c.execute("DELETE FROM mem_messages WHERE seq = ANY($1)", seqs)
    await c.execute("DELETE FROM mem_embeddings WHERE kind='message' AND owner_id = ANY($1)", [str(s) for s in seqs])
    await c.execute(stored.SPEAKERS_WITHOUT_MESSAGES.format("$1", "$2"), t, u)
    return Forgotten(len(seqs), len(gone), int(reopened.split()[-1]))


async def sessions(c: asyncpg.Connection, scope: Scope, limit: int, offset: int) -> list[SessionInfo]:
    rows = await c.fetch(
        """SELECT session_id, count(*) AS messages, min(at) AS first_at, max(at) AS last_at
        FROM mem_messages WHERE tenant=$1 AND user_id=$2
        GROUP BY session_id ORDER BY max(at) DESC, session_id LIMIT $3 OFFSET $4""",
        scope.tenant,
        scope.user_id,
        limit,
        offset,
    )
    return [SessionInfo(r["session_id"], int(r["messages"]), r["first_at"], r["last_at"]) for r in rows]
