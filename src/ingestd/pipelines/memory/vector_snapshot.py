"""A user's vector matrix saved beside the SQLite file, so that a restarted process reads it in one piece.

Reading 100,000 vectors row by row costs seconds (a Python object per row); after a process has read them all (or
many new ones) it writes the normalised matrix to ``<db>.vectors/<key>-<token>.npy`` and the owners and the row
sequence number it reached to ``<key>.json``, which names that matrix file and, for a matrix searched in int8, its
int8 copy (``<key>-<token>.codes.npy`` and ``.scales.npy``: no process builds it again), in a thread; the JSON is
replaced atomically, so that a reader never pairs one snapshot's owners with another's matrix. The next process of
the same database maps the matrix and its int8 copy (no read), checks that the snapshot belongs to this database
(the row at its last sequence number is still there with the same owner, and the user's version has not gone back),
then reads only the rows written since, as the in-process cache does between jobs. A snapshot that does not pass
is ignored; a vector replaced since it was written makes the cache read every row again, as it does without
snapshots. Deleted rows stay in the matrix until then: their hits are dropped when their rows are read, as for the
in-process cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingestd.pipelines.memory.graph import GraphChanges, Scope
from ingestd.pipelines.memory.search import (
    EXACT_ROWS,
    CachedMatrix,
    Matrix,
    Quantized,
    VectorBatch,
    has_vector,
    quantize,
    quantized_copy,
)

MIN_ROWS = 20_000  # smaller matrices are read from the database fast enough
CATCH_UP_ROWS = 10_000  # a process that read this many rows past its snapshot saves a new one


def worth_saving(since: int, read: int) -> bool:
    """Whether a read of ``read`` rows after sequence ``since`` (0: every row) should leave a new snapshot: after
    a full read, and after a large catch-up (else every new process would read those rows again, one by one)."""
    return since == 0 or read >= CATCH_UP_ROWS


def large_writes(changes: GraphChanges) -> list[str]:
    """The kinds of vectors ``changes`` adds at least ``CATCH_UP_ROWS`` of. After applying them the writer reads
    them and saves the snapshot, rather than leave that read to the first search of every next process (a bulk
    import of 100,000 messages: seconds)."""
    counts = {
        "entity": sum(1 for e in changes.entities if has_vector(e.embedding)),
        "fact": sum(1 for f in changes.facts if has_vector(f.embedding)),
        "message": sum(1 for m in changes.messages if has_vector(m.embedding)),
    }
    return [kind for kind, count in counts.items() if count >= CATCH_UP_ROWS]


def after_read(entry: CachedMatrix, batch: VectorBatch, since: int, version: int) -> Snapshot | None:
    """The snapshot to save after reading ``batch`` (the rows after ``since``) into ``entry``, if it is worth
    saving (see ``worth_saving``); its last row's owner lets a later load check it belongs to this database."""
    if not batch.ids or not worth_saving(since, len(batch.ids)):
        return None
    return Snapshot(entry.ids, entry.matrix, entry.last_seq, batch.ids[-1], version, cached=entry)


@dataclass(frozen=True)
class Snapshot:
    ids: list[str]
    matrix: Matrix
    last_seq: int
    last_owner: str
    version: int
    token: str = ""  # PostgreSQL: the stored snapshot's random token, which a local copy must carry too
    quantized: Quantized | None = None  # the int8 copy a search scans (a file's, mapped), when there is one
    cached: CachedMatrix | None = None  # the cache's entry it was taken of: the writer shares its int8 copy


def path_for(directory: Path, scope: Scope, kind: str, model: str) -> Path:
    """The snapshot's JSON file (owners, numbers and the name of its matrix file)."""
    which = hashlib.sha256(f"{kind}\x00{model}".encode()).hexdigest()[:12]
    return directory / f"{_user_key(scope)}-{which}.json"


def _user_key(scope: Scope) -> str:
    return hashlib.sha256(f"{scope.tenant}\x00{scope.user_id}".encode()).hexdigest()[:32]


def forget(directory: Path | None, scope: Scope) -> None:
    """Delete the user's snapshots (after a deletion in their memory: no copy of a deleted vector stays on disk;
    the next full read writes them again)."""
    if directory is None:
        return
    for path in directory.glob(f"{_user_key(scope)}-*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def forget_one(directory: Path, scope: Scope, kind: str, model: str) -> None:
    """Delete the snapshot of (scope, kind, model) if there is one (PostgreSQL: a local copy of a snapshot the
    database no longer has)."""
    meta_path = path_for(directory, scope, kind, model)
    for path in [meta_path, *(directory / name for name in _file_names(meta_path))]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def load(directory: Path, scope: Scope, kind: str, model: str) -> Snapshot | None:
    """The snapshot of (scope, kind, model), or None when there is none or it cannot be read."""
    try:
        meta = json.loads(path_for(directory, scope, kind, model).read_text())
        matrix: Matrix = np.load(directory / meta["matrix"], mmap_mode="r")
        snapshot = Snapshot(
            meta["ids"], matrix, int(meta["last_seq"]), meta["last_owner"], int(meta["version"]), meta.get("token", "")
        )
    except (OSError, KeyError, ValueError, TypeError):
        return None
    if len(snapshot.ids) != matrix.shape[0] or matrix.dtype != np.float32 or matrix.ndim != 2:
        return None
    snapshot = dataclasses.replace(snapshot, quantized=_quantized(directory, meta, matrix))
    if snapshot.quantized is None and len(snapshot.ids) >= EXACT_ROWS:  # saved before snapshots had their int8 copy
        save_soon(directory, scope, kind, model, snapshot)  # once: the next process maps it
    return snapshot


def _quantized(directory: Path, meta: dict[str, object], matrix: Matrix) -> Quantized | None:
    """The snapshot's int8 copy, mapped, if it has one that fits ``matrix`` (older snapshots have none: the
    first search then builds it in the background, ``search._quantize_soon``)."""
    codes_name, scales_name = meta.get("codes"), meta.get("scales")
    if not isinstance(codes_name, str) or not isinstance(scales_name, str):
        return None
    try:
        codes = np.load(directory / codes_name, mmap_mode="r")
        scales = np.load(directory / scales_name)
    except (OSError, ValueError):
        return None
    if codes.dtype != np.int8 or codes.shape != matrix.shape or scales.dtype != np.float32:
        return None
    if scales.shape != (matrix.shape[0],):
        return None
    return Quantized(codes, scales)


def save_soon(directory: Path, scope: Scope, kind: str, model: str, snapshot: Snapshot) -> None:
    """Write ``snapshot`` in a thread (a few hundred ms for 100,000 rows): a search does not wait for it.

    A matrix that searches scan in int8 (``EXACT_ROWS`` rows or more) is saved with its int8 copy, built here if
    the snapshot has none (0.1 s a 100,000 x 384 matrix): a restarted process maps it and builds none. Built in
    each new process instead, it took the cores from the requests that came just after the first recall (the next
    2-10 ``GET /context`` of 200 at 60-130 ms instead of 25-30 ms, on a 2-core machine, bench/memory.py)."""
    if len(snapshot.ids) < MIN_ROWS:
        return
    threading.Thread(
        target=_save, args=(directory, path_for(directory, scope, kind, model), snapshot), daemon=True
    ).start()


def _save(directory: Path, meta_path: Path, snapshot: Snapshot) -> None:
    with contextlib.suppress(OSError):  # a read-only or full disk: the next process reads the rows instead
        directory.mkdir(exist_ok=True)
        previous = _file_names(meta_path)
        stem = f"{meta_path.stem}-{secrets.token_hex(6)}"
        matrix = np.asarray(snapshot.matrix, dtype=np.float32)
        np.save(directory / f"{stem}.npy", matrix)
        meta: dict[str, object] = {"matrix": f"{stem}.npy", "ids": snapshot.ids, "last_seq": snapshot.last_seq,
                "last_owner": snapshot.last_owner, "version": snapshot.version, "token": snapshot.token}  # fmt: skip
        if len(snapshot.ids) >= EXACT_ROWS:
            if snapshot.quantized is not None:
                quantized = snapshot.quantized
            elif snapshot.cached is not None and snapshot.cached.matrix is snapshot.matrix:
                quantized = quantized_copy(snapshot.cached)
            else:
                quantized = quantize(matrix)
            np.save(directory / f"{stem}.codes.npy", np.asarray(quantized.codes))
            np.save(directory / f"{stem}.scales.npy", np.asarray(quantized.scales))
            meta |= {"codes": f"{stem}.codes.npy", "scales": f"{stem}.scales.npy"}
        fd, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(meta, out)
            os.replace(temporary, meta_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        for name in previous:  # a process that mapped one keeps its pages (POSIX)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)


def _file_names(meta_path: Path) -> list[str]:
    """The files the snapshot's JSON names: its matrix, and its int8 codes and scales when it has them."""
    try:
        meta = json.loads(meta_path.read_text())
        names = [meta.get(key) for key in ("matrix", "codes", "scales")]
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in names if isinstance(name, str)]
