"""A user's vector matrix saved in PostgreSQL, so that a restarted process reads it in one piece.

The PostgreSQL twin of ``vector_snapshot`` (SQLite keeps the matrix in a file beside the database): one row per
(user, kind, model) in ``mem_vector_snapshots`` with the normalised float32 matrix as ``bytea``, the owners, and
the row sequence number it reached. Written in the background after a process read a user's vectors row by row;
read on a process's first search of that user when it still belongs to the rows (the row at its last sequence
number is there with the same owner, the user's version has not gone back); the rows written since are then read
as the in-process cache does between jobs. Any deletion in the user's memory deletes the user's snapshots.
"""

from __future__ import annotations

import json

import asyncpg
import numpy as np

from ingestd.pipelines.memory import vector_snapshot
from ingestd.pipelines.memory.graph import Scope
from ingestd.pipelines.memory.vector_snapshot import Snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS mem_vector_snapshots (tenant text NOT NULL, user_id text NOT NULL, kind text NOT NULL,
    model text NOT NULL, last_seq bigint NOT NULL, last_owner text NOT NULL, version bigint NOT NULL,
    ids text NOT NULL, matrix bytea NOT NULL, PRIMARY KEY (tenant, user_id, kind, model));
"""
MAX_BYTES = 512 * 1024 * 1024  # a bytea holds at most 1 GB; larger matrices are read row by row


async def load(c: asyncpg.Connection, scope: Scope, kind: str, model: str, version: int) -> Snapshot | None:
    """The saved matrix of (scope, kind, model) when it still belongs to the rows, else None."""
    row = await c.fetchrow(
        """SELECT s.last_seq, s.last_owner, s.version, s.ids, s.matrix FROM mem_vector_snapshots s
        JOIN mem_embeddings e ON e.kind = s.kind AND e.owner_id = s.last_owner AND e.seq = s.last_seq
        AND e.model = s.model AND e.tenant = s.tenant AND e.user_id = s.user_id
        WHERE s.tenant=$1 AND s.user_id=$2 AND s.kind=$3 AND s.model=$4""",
        scope.tenant,
        scope.user_id,
        kind,
        model,
    )
    if row is None or row["version"] > version:
        return None
    ids: list[str] = json.loads(row["ids"])
    matrix = np.frombuffer(row["matrix"], dtype=np.float32)
    if not ids or matrix.size % len(ids):
        return None
    return Snapshot(ids, matrix.reshape(len(ids), -1), row["last_seq"], row["last_owner"], row["version"])


async def save(pool: asyncpg.Pool, scope: Scope, kind: str, model: str, snapshot: Snapshot) -> None:
    """Store ``snapshot`` (replacing the user's previous one), unless it is too small to be worth it or too big."""
    matrix = np.ascontiguousarray(snapshot.matrix, dtype=np.float32)
    if len(snapshot.ids) < vector_snapshot.MIN_ROWS or matrix.nbytes > MAX_BYTES:
        return
    async with pool.acquire() as c:
        await c.execute(
            """INSERT INTO mem_vector_snapshots VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
            ON CONFLICT (tenant, user_id, kind, model) DO UPDATE SET last_seq = excluded.last_seq,
            last_owner = excluded.last_owner, version = excluded.version, ids = excluded.ids,
            matrix = excluded.matrix""",
            scope.tenant, scope.user_id, kind, model, snapshot.last_seq, snapshot.last_owner, snapshot.version,
            json.dumps(snapshot.ids), matrix.tobytes(),
        )  # fmt: skip


async def forget(c: asyncpg.Connection, scope: Scope) -> None:
    await c.execute("DELETE FROM mem_vector_snapshots WHERE tenant=$1 AND user_id=$2", scope.tenant, scope.user_id)
