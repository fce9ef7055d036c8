"""Hybrid search shared by the graph backends: a cached vector matrix per user, query terms, rank fusion."""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeGuard

import numkong
import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from ingestd.pipelines.memory.graph import Fact, Scope

CANDIDATES = 100  # from each of full text and vectors, before fusion
RANK_WINDOW = 1_000  # full-text ranking looks at the newest this many matches (see messages_sqlite.ranked_window)
ENTITY_HITS = 5  # entities a search returns at the most
ENTITY_SIMILARITY = 0.35  # the least cosine similarity of an entity found by its name's embedding alone
RRF_K = 60.0  # reciprocal rank fusion constant (Cormack et al. 2009)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by did do does for from has have he her his how i in is it its me my of on or she that "
    "the their them they this to was were what when where which who whom why will with you your".split()
)

Matrix = npt.NDArray[np.float32]


def query_terms(query: str, limit: int = 12) -> list[str]:
    """Distinct lowercase words of ``query`` without stop words, safe to quote in FTS5 / tsquery syntax."""
    text = _ascii(query).lower()
    terms: list[str] = []
    for word in _WORD.findall(text):
        if word not in _STOP and word not in terms:
            terms.append(word)
    return terms[:limit]


def fact_search_texts(subject: str, predicate: str, obj: str, sentence: str) -> tuple[str, str]:
    """What full-text search indexes for a fact: its triple in words (weighted higher: a source sentence often
    states several facts) and its sentence; each followed, when it differs, by its form without diacritics, so
    that "Zurich" finds "Zürich" in PostgreSQL's accent-blind ``simple`` configuration too."""
    return _with_ascii(f"{subject} {predicate.replace('_', ' ')} {obj}"), _with_ascii(sentence)


def _with_ascii(text: str) -> str:
    folded = _ascii(text)
    return text if folded == text else f"{text} {folded}"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


PREFIX_MIN = 4  # query words at least this long also match longer words ("live" finds "lives", "lived")


def fts5_match(terms: Sequence[str], operator: str = "OR") -> str:
    """The FTS5 expression joining ``terms`` with ``operator`` (quoted; long ones as prefixes, a poor man's
    stemming)."""
    return f" {operator} ".join(f'"{t}"*' if len(t) >= PREFIX_MIN else f'"{t}"' for t in terms)


def tsquery(terms: Sequence[str], operator: str = "|") -> str:
    """The ``to_tsquery('simple', …)`` text joining ``terms`` with ``operator`` (long ones as prefixes)."""
    return f" {operator} ".join(f"{t}:*" if len(t) >= PREFIX_MIN else t for t in terms)


def merge_rankings(best: Sequence[str], more: Sequence[str], limit: int = CANDIDATES) -> list[str]:
    """``best`` (facts matching every term, ranked), then ``more`` (any term, newest first) up to ``limit``.

    Ranking every fact that shares one word with the query costs a sort of a large part of the graph; the facts
    matching all the words are few and the best ones, so only they are ranked (bm25 / ts_rank).
    """
    return list(dict.fromkeys([*best, *more]))[:limit]


def has_vector(vector: Sequence[float] | None) -> TypeGuard[Sequence[float]]:
    """A vector with values (a numpy row is accepted too, where ``if vector`` would be ambiguous)."""
    return vector is not None and len(vector) > 0


def vector_to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def vector_from_bytes(blob: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(blob, dtype=np.float32)]


@dataclass
class _Cached:
    version: int
    ids: list[str]
    matrix: Matrix  # rows L2-normalised
    last_seq: int = 0  # the highest row sequence number read into the matrix
    known: set[str] = field(default_factory=set)
    quantized: Quantized | None = None  # ``matrix`` in int8 (each row scaled to +-127), built in the background
    quantizing: bool = False


CachedMatrix = _Cached


class VectorRow(NamedTuple):
    seq: int  # the row's sequence number in the store
    owner_id: str
    vector: bytes  # float32


@dataclass(frozen=True)
class VectorBatch:
    """Vectors read from the store in sequence order: their owners, the rows (float32; the cache normalises
    them in place when it may), and the highest sequence number read."""

    ids: list[str]
    matrix: Matrix
    last_seq: int

    @classmethod
    def of_blobs(cls, ids: list[str], blobs: Sequence[bytes], last_seq: int) -> VectorBatch:
        """One array filled with the rows' bytes (no joined copy of them all first: at 100,000 rows each copy of
        the 150 MB cost a second on a busy machine)."""
        if not blobs:
            return cls([], np.zeros((0, 1), dtype=np.float32), last_seq)
        size = len(blobs[0])
        matrix = np.empty((len(blobs), size // 4), dtype=np.float32)
        view = matrix.data.cast("B")
        for i, blob in enumerate(blobs):
            view[i * size : (i + 1) * size] = blob  # a row of another width raises ValueError
        return cls(ids, matrix, last_seq)

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[int, str, bytes]], since: int) -> VectorBatch:
        named = [VectorRow._make(r) for r in rows]
        last_seq = max((r.seq for r in named), default=since)
        return cls.of_blobs([r.owner_id for r in named], [r.vector for r in named], last_seq)


EXACT_ROWS = 20_000  # below this many rows, one float32 matrix-vector product is as fast as the int8 scan
RERANK = 400  # rows the int8 scan keeps for the exact float32 ranking (recall@100 1.00 vs brute force)
QUANTIZE_ROWS = 4096  # rows quantized at a time (``Quantized.of``)


@dataclass(frozen=True)
class Quantized:
    """Rows in int8, each scaled by its own factor: ``row ~ codes / scales``. Scanned with NumKong's int8 dot
    kernels (a quarter of float32's memory traffic), then the best ``RERANK`` are ranked exactly in float32."""

    codes: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]

    @classmethod
    def of(cls, matrix: Matrix) -> Quantized:
        """The int8 copy of ``matrix``, ``QUANTIZE_ROWS`` rows at a time: the temporaries stay in the CPU's cache
        (100,000 x 384 rows: 0.1 s against 0.2-0.5 s in one piece, which allocated and filled two more copies of
        the matrix; the same codes)."""
        codes = np.empty(matrix.shape, dtype=np.int8)
        scales = np.empty(matrix.shape[0], dtype=np.float32)
        for start in range(0, matrix.shape[0], QUANTIZE_ROWS):
            block = np.asarray(matrix[start : start + QUANTIZE_ROWS], dtype=np.float32)
            peak = np.maximum(block.max(axis=1), -block.min(axis=1))
            peak[peak == 0] = 1.0
            block_scales = (127.0 / peak).astype(np.float32)
            scaled = block * block_scales[:, None]
            np.rint(scaled, out=scaled)
            codes[start : start + len(block)] = scaled
            scales[start : start + len(block)] = block_scales
        return cls(codes, scales)

    def scores(self, query: Matrix) -> npt.NDArray[np.float64]:
        """Approximate cosine similarity of every row to the unit vector ``query``."""
        peak = float(np.abs(query).max()) or 1.0
        codes = np.rint(query * (127.0 / peak)).astype(np.int8)
        dots = np.asarray(numkong.cdist(codes[None, :], self.codes, metric="dot")).ravel()
        scaled: npt.NDArray[np.float64] = dots / self.scales
        return scaled


class VectorCache:
    """Per (scope, kind, model) matrix of embeddings, kept in step with the user's graph version.

    A search then costs one scan of the matrix instead of reading every vector from the database; after a
    job adds to the graph, only the rows written since (higher sequence numbers) are read and appended.
    """

    def __init__(self, max_users: int = 64) -> None:
        self._cached: dict[tuple[str, str, str, str], _Cached] = {}
        self._max_users = max_users

    def get(self, scope: Scope, kind: str, model: str) -> _Cached | None:
        """The cached matrix, whatever graph version it was read at."""
        return self._cached.get((scope.tenant, scope.user_id, kind, model))

    def put(
        self,
        scope: Scope,
        kind: str,
        model: str,
        version: int,
        ids: list[str],
        matrix: Matrix,
        last_seq: int,
        quantized: Quantized | None = None,
    ) -> _Cached:
        """Cache a matrix read in one piece (a snapshot; rows already normalised) as of ``version``, with its int8
        copy when the snapshot has one (then no search waits for one to be built)."""
        key = (scope.tenant, scope.user_id, kind, model)
        if len(self._cached) >= self._max_users and key not in self._cached:
            self._cached.pop(next(iter(self._cached)))
        entry = self._cached[key] = _Cached(version, ids, matrix, last_seq, set(ids), quantized)
        return entry

    def refresh(
        self,
        scope: Scope,
        kind: str,
        model: str,
        version: int,
        rows: Sequence[tuple[int, str, bytes]] | VectorBatch,
        since: int,
    ) -> _Cached | None:
        """Store the matrix for ``version`` from ``rows`` (those after sequence ``since``; 0: all of them).

        None when a row replaces one already cached (an owner embedded again): read everything (``since=0``).
        """
        batch = rows if isinstance(rows, VectorBatch) else VectorBatch.of_rows(rows, since)
        key = (scope.tenant, scope.user_id, kind, model)
        base = self._cached.get(key) if since else None
        if base is not None and any(i in base.known for i in batch.ids):
            return None
        if base is None and len(self._cached) >= self._max_users and key not in self._cached:
            self._cached.pop(next(iter(self._cached)))
        ids, fresh, last_seq = batch.ids, _normalised(batch.matrix), max(batch.last_seq, since)
        if base is None or not base.ids:
            entry = _Cached(version, ids, fresh, last_seq, set(ids))
        elif not ids:
            entry = _Cached(version, base.ids, base.matrix, last_seq, base.known, base.quantized)
        else:
            matrix: Matrix = np.vstack([base.matrix, fresh])
            quantized = None
            if base.quantized is not None:  # extend the int8 copy too, rather than rebuild it whole
                more = Quantized.of(fresh)
                quantized = Quantized(
                    np.vstack([base.quantized.codes, more.codes]), np.concatenate([base.quantized.scales, more.scales])
                )
            entry = _Cached(version, base.ids + ids, matrix, last_seq, base.known | set(ids), quantized)
        self._cached[key] = entry
        return entry


def _normalised(matrix: Matrix) -> Matrix:
    """Rows scaled to unit length: in place when ``matrix`` is writable (no second copy of a large matrix)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    norms[norms == 0] = 1.0
    if matrix.flags.writeable:
        matrix /= norms[:, None]
        return matrix
    normalised: Matrix = matrix / norms[:, None]
    return normalised


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def nearest(entry: _Cached, vector: Sequence[float], k: int = CANDIDATES) -> list[tuple[str, float]]:
    """The ``k`` rows most cosine-similar to ``vector``: (id, similarity), best first.

    Up to ``EXACT_ROWS`` rows, by one float32 product; beyond, an int8 scan picks ``RERANK`` candidates that
    float32 then ranks (the same top ``k`` as the exact product on bench/memory.py's check). One BLAS thread:
    a matrix-vector product is memory-bound, and OpenBLAS's threads cost more than they save (a 2,000-row
    product took 4.7 ms with them on a busy 2-core machine, 0.2 ms without).
    """
    with _blas().limit(limits=1, user_api="blas"):
        return _nearest(entry, vector, k)


def _nearest(entry: _Cached, vector: Sequence[float], k: int) -> list[tuple[str, float]]:
    if not entry.ids:
        return []
    q = np.asarray(vector, dtype=np.float32)
    if q.shape[0] != entry.matrix.shape[1]:
        return []  # embedded by another model: nothing comparable
    q = q / (float(np.linalg.norm(q)) or 1.0)
    k = min(k, len(entry.ids))
    quantized = entry.quantized
    if quantized is None:
        if len(entry.ids) >= EXACT_ROWS:
            _quantize_soon(entry)
        return _top(entry, entry.matrix @ q, np.arange(len(entry.ids)), k)
    rough = quantized.scores(q)
    pool = min(max(RERANK, k), len(entry.ids))
    candidates = np.argpartition(-rough, pool - 1)[:pool]
    return _top(entry, entry.matrix[candidates] @ q, candidates, k)


_QUANTIZING = threading.Lock()
_ONE_AT_A_TIME = threading.Lock()  # the int8 copies of a process are built one after another


def quantize(matrix: Matrix) -> Quantized:
    """``Quantized.of(matrix)``, one at a time in the process (a background thread's work: see ``_quantize_soon``)."""
    with _ONE_AT_A_TIME:
        return Quantized.of(matrix)


def quantized_copy(entry: _Cached) -> Quantized:
    """``entry``'s int8 copy, built now unless another thread built it first (its search's, or the snapshot's
    writer: the copy is built once for both)."""
    with _ONE_AT_A_TIME:
        if entry.quantized is None:
            entry.quantized = Quantized.of(entry.matrix)
        return entry.quantized


def _quantize_soon(entry: _Cached) -> None:
    """Build ``entry``'s int8 copy in a thread (about 0.1 s of CPU per 100k rows): until it is there, searches
    scan in float32, so that a user's first search costs no more than reading the vectors. One copy at a time:
    the first recall starts two (facts and messages), and built side by side they took both cores of a 2-core
    machine from the requests that came next (``GET /context`` 60-80 ms instead of 25 ms for the next ten)."""
    with _QUANTIZING:
        if entry.quantizing:
            return
        entry.quantizing = True

    def build() -> None:
        quantized_copy(entry)

    threading.Thread(target=build, name="memory-quantize", daemon=True).start()


def _top(entry: _Cached, sims: Matrix, rows: npt.NDArray[np.intp], k: int) -> list[tuple[str, float]]:
    k = min(k, len(rows))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [(entry.ids[rows[i]], float(sims[i])) for i in top]


def exact_nearest(entry: _Cached, vector: Sequence[float], k: int = CANDIDATES) -> list[tuple[str, float]]:
    """``nearest`` by brute force in float32 whatever the size (the reference bench/memory.py checks against)."""
    q = np.asarray(vector, dtype=np.float32)
    q = q / (float(np.linalg.norm(q)) or 1.0)
    with _blas().limit(limits=1, user_api="blas"):
        return _top(entry, entry.matrix @ q, np.arange(len(entry.ids)), k)


def fuse(*rankings: Sequence[str]) -> dict[str, float]:
    """Reciprocal rank fusion of ranked id lists: robust to the different scales of bm25 and cosine."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


def best_entities(named: Sequence[str], nearest: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The best ``ENTITY_HITS`` entities with their fused scores: those with an alias holding a query word
    (``named``), and those whose name's embedding is among the nearest ``ENTITY_HITS`` and similar enough."""
    close = [i for i, s in nearest[:ENTITY_HITS] if s >= ENTITY_SIMILARITY]
    scores = fuse(list(dict.fromkeys(named)), close)
    return sorted(scores.items(), key=lambda kv: -kv[1])[:ENTITY_HITS]


@dataclass(frozen=True)
class FactOrder:
    """What facts are ranked by, read before the facts themselves: only the best ``limit`` are read whole
    (decoding 200 candidate rows cost more than ranking them)."""

    id: str
    current: bool
    created_at: datetime


def best_fact_ids(facts: Sequence[FactOrder], scores: dict[str, float], limit: int) -> list[str]:
    """The best ``limit`` fact ids: current facts first, then by fused score, then newest (then by id: the order
    both databases read them in before, a stable one)."""
    ordered = sorted(facts, key=lambda f: (not f.current, -scores.get(f.id, 0.0), -f.created_at.timestamp(), f.id))
    return [f.id for f in ordered[:limit]]


def in_order(facts: Sequence[Fact], ids: Sequence[str], scores: dict[str, float]) -> list[tuple[Fact, float]]:
    """``facts`` (read in any order) in the order of ``ids``, with their scores."""
    by_id = {f.id: f for f in facts}
    return [(by_id[i], scores.get(i, 0.0)) for i in ids if i in by_id]
