"""A user's vectors read from PostgreSQL in bulk, and the matrix saved there, so that a restarted process reads
it in one piece.

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

from ingestd.pipelines.memory import search, vector_snapshot
from ingestd.pipelines.memory.graph import Scope
from ingestd.pipelines.memory.vector_snapshot import Snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS mem_vector_snapshots (tenant text NOT NULL, user_id text NOT NULL, kind text NOT NULL,
    model text NOT NULL, last_seq bigint NOT NULL, last_owner text NOT NULL, version bigint NOT NULL,
    ids text NOT NULL, matrix bytea NOT NULL, PRIMARY KEY (tenant, user_id, kind, model));
"""
MAX_BYTES = 512 * 1024 * 1024  # a bytea holds at most 1 GB; larger matrices are read row by row
PAGE_ROWS = 50_000  # vectors read in one aggregate (75 MB at 384 dimensions)


async def read_vectors(c: asyncpg.Connection, scope: Scope, kind: str, model: str, since: int) -> search.VectorBatch:
    """The user's vectors of ``kind`` written after sequence ``since``, in sequence order.

    Read as aggregates of up to ``PAGE_ROWS`` rows (the owners as one array, the vectors as one ``bytea``): a
    row per vector cost a Python object per row and field (10 s for 200,000 on a busy machine). One user's
    applies hold an advisory lock until they commit, so for one user seq order is commit order: the rows after
    the cached ones are exactly the new ones.
    """
    ids: list[str] = []
    pages: list[search.Matrix] = []
    last_seq = since
    while True:
        page = await c.fetchrow(
            # The two aggregates read the same rows in the same order, so owners and vectors pair up; the page
            # is the first PAGE_ROWS by seq (mem_embeddings_seq: read in order, no sort of 150 MB on disk).
            """SELECT count(*) AS n, max(seq) AS last_seq, array_agg(owner_id) AS ids,
            string_agg(vector, ''::bytea) AS vectors FROM (SELECT seq, owner_id, vector
            FROM mem_embeddings WHERE tenant=$1 AND user_id=$2 AND kind=$3 AND model=$4 AND seq > $5
            ORDER BY seq LIMIT $6) page""",
            scope.tenant, scope.user_id, kind, model, last_seq, PAGE_ROWS,
        )  # fmt: skip
        if page is None or not page["n"]:
            break
        ids += page["ids"]
        pages.append(np.frombuffer(page["vectors"], dtype=np.float32).reshape(page["n"], -1))
        last_seq = page["last_seq"]
        if page["n"] < PAGE_ROWS:
            break
    if not pages:
        return search.VectorBatch([], np.zeros((0, 1), dtype=np.float32), since)
    return search.VectorBatch(ids, pages[0] if len(pages) == 1 else np.concatenate(pages), last_seq)


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
