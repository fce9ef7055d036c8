"""A user's vectors read from PostgreSQL in bulk, and the matrix saved there, so that a restarted process reads
it in one piece.

The PostgreSQL twin of ``vector_snapshot`` (SQLite keeps the matrix in a file beside the database): one row per
(user, kind, model) in ``mem_vector_snapshots`` with the normalised matrix as ``bytea``, the owners, and
the row sequence number it reached. Written in the background after a process read a user's vectors row by row;
read on a process's first search of that user when it still belongs to the rows (the row at its last sequence
number is there with the same owner, the user's version has not gone back); the rows written since are then read
as the in-process cache does between jobs. Any deletion in the user's memory deletes the user's snapshots.

The matrix is stored in float16, under the model name with ``|float16`` appended (a float32 snapshot of an
earlier version is not read, and an earlier version does not read these: it reads the rows): half the bytes to
move, and the first search of a process waits for that move (2 x 150 MB took 2-5 s at 100,000 facts and
messages on a busy machine). The rows are normalised again in float32 on load; a cosine from float16 rows differs
from the float32 one by less than 0.001.

Each stored snapshot has a random ``token``, and a host keeps a copy of the snapshots it wrote or fetched in
``local_dir`` (``vector_snapshot``'s files: float32, memory-mapped): a process whose host has the copy with the
stored token maps it instead of moving the ``bytea`` (0.4 s instead of 2-5 s for a first recall at 100,000 +
100,000 on a busy machine). The token is checked against the database on every load, so a copy of a snapshot the
database no longer has (a deletion in the user's memory, on any host) is never used, and it is deleted on that
load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path

import asyncpg
import numpy as np
import numpy.typing as npt

from ingestd.pipelines.memory import search, vector_snapshot
from ingestd.pipelines.memory.graph import Scope
from ingestd.pipelines.memory.vector_snapshot import Snapshot

MAX_BYTES = 512 * 1024 * 1024  # a bytea holds at most 1 GB; larger matrices are read row by row
STORED_DTYPE = "float16"  # the matrix's type in the bytea (see the module docstring)
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


async def load(
    c: asyncpg.Connection, scope: Scope, kind: str, model: str, version: int, local: Path | None = None
) -> Snapshot | None:
    """The saved matrix of (scope, kind, model) when it still belongs to the rows, else None.

    With ``local`` (``local_dir``), the host's copy of that very snapshot (same token) is mapped instead of
    moving the ``bytea``; a fetched snapshot leaves such a copy, and one the database no longer has is deleted.
    """
    key = (scope.tenant, scope.user_id, kind, _stored_model(model))
    meta = await c.fetchrow(
        """SELECT s.version, s.token FROM mem_vector_snapshots s
        JOIN mem_embeddings e ON e.kind = s.kind AND e.owner_id = s.last_owner AND e.seq = s.last_seq
        AND e.model = $5 AND e.tenant = s.tenant AND e.user_id = s.user_id
        WHERE s.tenant=$1 AND s.user_id=$2 AND s.kind=$3 AND s.model=$4""",
        *key,
        model,
    )
    if meta is None or meta["version"] > version:
        if local is not None:
            vector_snapshot.forget_one(local, scope, kind, model)
        return None
    if local is not None and meta["token"]:
        copy = vector_snapshot.load(local, scope, kind, model)
        if copy is not None and copy.token == meta["token"]:
            return copy
    row = await c.fetchrow(
        """SELECT last_seq, last_owner, version, token, ids, matrix FROM mem_vector_snapshots
        WHERE tenant=$1 AND user_id=$2 AND kind=$3 AND model=$4""",
        *key,
    )
    snapshot = _snapshot(row) if row is not None and row["version"] <= version else None
    if snapshot is not None and local is not None and snapshot.token:
        vector_snapshot.save_soon(local, scope, kind, model, snapshot)
    return snapshot


def _snapshot(row: asyncpg.Record) -> Snapshot | None:
    ids = json.loads(row["ids"])
    halves = np.frombuffer(row["matrix"], dtype=np.float16)
    if not ids or not isinstance(ids, list) or halves.size % len(ids):
        return None
    matrix = _unit_rows(halves.reshape(len(ids), -1))
    return Snapshot(ids, matrix, row["last_seq"], row["last_owner"], row["version"], row["token"])


def _stored_model(model: str) -> str:
    return f"{model}|{STORED_DTYPE}"


def _unit_rows(half: npt.NDArray[np.float16]) -> search.Matrix:
    """float16 rows as unit float32 rows (one copy, normalised in place)."""
    rows = half.astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    norms[norms == 0] = 1.0
    rows /= norms[:, None]
    return rows


async def save(
    pool: asyncpg.Pool, scope: Scope, kind: str, model: str, snapshot: Snapshot, local: Path | None = None
) -> None:
    """Store ``snapshot`` (replacing the user's previous one) under a new token, unless it is too small to be
    worth it or too big; then leave this host's copy in ``local``."""
    matrix = np.ascontiguousarray(snapshot.matrix, dtype=np.float16)
    if len(snapshot.ids) < vector_snapshot.MIN_ROWS or matrix.nbytes > MAX_BYTES:
        return
    snapshot = dataclasses.replace(snapshot, token=secrets.token_hex(16))
    ids = json.dumps(snapshot.ids)
    async with pool.acquire() as c:
        await c.execute(
            """INSERT INTO mem_vector_snapshots (tenant, user_id, kind, model, last_seq, last_owner, version, ids,
            matrix, token) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
            ON CONFLICT (tenant, user_id, kind, model) DO UPDATE SET last_seq = excluded.last_seq,
            last_owner = excluded.last_owner, version = excluded.version, ids = excluded.ids,
            matrix = excluded.matrix, token = excluded.token""",
            scope.tenant, scope.user_id, kind, _stored_model(model), snapshot.last_seq, snapshot.last_owner,
            snapshot.version, ids, matrix.tobytes(), snapshot.token,
        )  # fmt: skip
    if local is not None:
        vector_snapshot.save_soon(local, scope, kind, model, snapshot)


def local_dir(url: str) -> Path | None:
    """This host's folder for copies of the database's snapshots: ``<tmp>/ingestd-memory-vectors-<uid>/<hash of
    the URL>`` (the first folder private to this user), or None when it cannot be made."""
    base = Path(tempfile.gettempdir()) / f"ingestd-memory-vectors-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        if base.stat().st_uid != os.getuid():
            return None
    except OSError:
        return None
    return base / hashlib.sha256(url.encode()).hexdigest()[:24]


async def forget(c: asyncpg.Connection, scope: Scope) -> None:
    await c.execute("DELETE FROM mem_vector_snapshots WHERE tenant=$1 AND user_id=$2", scope.tenant, scope.user_id)
