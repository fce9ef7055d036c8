"""The chat messages of the memory graph in PostgreSQL: a table with an English tsvector (GIN), vectors."""

from __future__ import annotations

import json

import asyncpg

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory import stored
from ingestd.pipelines.memory.graph import GraphChanges, Message, Scope
from ingestd.pipelines.memory.stored import MESSAGE_SELECT


async def list_messages(
    c: asyncpg.Connection, scope: Scope, session_id: str | None, limit: int, offset: int
) -> list[Message]:
    where = " AND session_id=$5" if session_id is not None else ""
    args = (scope.tenant, scope.user_id, limit, offset, *((session_id,) if session_id is not None else ()))
    sql = f"{MESSAGE_SELECT} WHERE tenant=$1 AND user_id=$2{where} ORDER BY at, session_id, idx LIMIT $3 OFFSET $4"
    return [message(r) for r in await c.fetch(sql, *args)]


def message(row: asyncpg.Record) -> Message:
    return stored.message(row, stored.as_is)


async def insert_messages(c: asyncpg.Connection, scope: Scope, ch: GraphChanges) -> int:
    """Insert the job's messages (a client id already stored is kept as it was); how many were new."""
    t, u = scope.tenant, scope.user_id
    await c.executemany(
        "INSERT INTO mem_speakers VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
        [(t, u, s) for s in sorted({m.speaker for m in ch.messages})],
    )
    added = 0
    for m in ch.messages:
        seq = await c.fetchval(
            """INSERT INTO mem_messages (tenant, user_id, id, session_id, idx, role, speaker, content, at, utc_offset,
            dates, job_id, created_at, search_text) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,now(),$13)
            ON CONFLICT (tenant, user_id, id) DO NOTHING RETURNING seq""",
            t, u, m.id, m.session_id, m.index, m.role, m.speaker, m.content, m.at, stored.utc_offset(m.at),
            json.dumps(m.dates), ch.job_id, f"{m.content} {' '.join(m.dates)}",
        )  # fmt: skip
        if seq is None:
            continue
        added += 1
        if hybrid.has_vector(m.embedding):
            await c.execute(
                """INSERT INTO mem_embeddings (kind, owner_id, tenant, user_id, model, vector)
                VALUES ('message',$1,$2,$3,$4,$5) ON CONFLICT (kind, owner_id) DO NOTHING""",
                str(seq), t, u, ch.embedding_model, hybrid.vector_to_bytes(m.embedding),
            )  # fmt: skip
    return added


async def text_ranking(c: asyncpg.Connection, scope: Scope, terms: list[str]) -> list[str]:
    """Message keys matching any of ``terms`` (English stemming), best ts_rank first."""
    if not terms:
        return []
    # ts_rank over the newest RANK_WINDOW matches only: a common word matches much of a big memory.
    rows = await c.fetch(
        """SELECT seq FROM (SELECT seq, tsv FROM mem_messages WHERE tenant=$1 AND user_id=$2
        AND tsv @@ to_tsquery('english', $3) ORDER BY seq DESC LIMIT $5) newest
        ORDER BY ts_rank(tsv, to_tsquery('english', $3)) DESC, seq LIMIT $4""",
        scope.tenant,
        scope.user_id,
        " | ".join(terms),
        hybrid.CANDIDATES,
        hybrid.RANK_WINDOW,
    )
    return [str(r["seq"]) for r in rows]


async def text_ranking_among(c: asyncpg.Connection, scope: Scope, terms: list[str], keys: list[str]) -> list[str]:
    """Those of ``keys`` matching any of ``terms``, best ts_rank first (as ``text_ranking`` orders them)."""
    if not terms or not keys:
        return []
    rows = await c.fetch(
        """SELECT seq FROM mem_messages WHERE tenant=$1 AND user_id=$2 AND seq = ANY($3)
        AND tsv @@ to_tsquery('english', $4) ORDER BY ts_rank(tsv, to_tsquery('english', $4)) DESC, seq""",
        scope.tenant,
        scope.user_id,
        [int(k) for k in keys],
        " | ".join(terms),
    )
    return [str(r["seq"]) for r in rows]


async def get_messages(c: asyncpg.Connection, scope: Scope, keys: list[str]) -> list[Message]:
    sql = f"{MESSAGE_SELECT} WHERE tenant=$1 AND user_id=$2 AND seq = ANY($3)"
    rows = await c.fetch(sql, scope.tenant, scope.user_id, [int(k) for k in keys])
    return [message(r) for r in rows]


async def messages_with_ids(c: asyncpg.Connection, scope: Scope, ids: list[str]) -> list[Message]:
    sql = f"{MESSAGE_SELECT} WHERE tenant=$1 AND user_id=$2 AND id = ANY($3)"
    rows = await c.fetch(sql, scope.tenant, scope.user_id, ids)
    return [message(r) for r in rows]


async def neighbours(c: asyncpg.Connection, scope: Scope, keys: list[str], width: int) -> list[Message]:
    """The messages at most ``width`` places before or after each of ``keys`` in its session (them included)."""
    rows = await c.fetch(
        """SELECT DISTINCT n.seq, n.id, n.session_id, n.idx, n.role, n.speaker, n.content, n.at,
            n.utc_offset, n.dates
        FROM mem_messages m JOIN mem_messages n ON n.tenant = m.tenant AND n.user_id = m.user_id
        AND n.session_id = m.session_id AND n.idx BETWEEN m.idx - $4 AND m.idx + $4
        WHERE m.tenant=$1 AND m.user_id=$2 AND m.seq = ANY($3)""",
        scope.tenant,
        scope.user_id,
        [int(k) for k in keys],
        width,
    )
    return [message(r) for r in rows]


async def speakers(c: asyncpg.Connection, scope: Scope) -> list[str]:
    rows = await c.fetch("SELECT speaker FROM mem_speakers WHERE tenant=$1 AND user_id=$2", scope.tenant, scope.user_id)
    return sorted(r["speaker"] for r in rows)
