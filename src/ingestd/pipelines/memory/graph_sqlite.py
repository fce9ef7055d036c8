"""The memory graph in SQLite (stdlib ``sqlite3``, FTS5 for full text), next to the job store's tables."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from ingestd import errors
from ingestd.models import utcnow
from ingestd.pipelines.memory import forget_sqlite, stored, vector_snapshot
from ingestd.pipelines.memory import messages_sqlite as chat
from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory.graph import (
    MISSING_TABLES,
    ApplyOutcome,
    Entity,
    EntityHit,
    Fact,
    Forgotten,
    GraphChanges,
    KnownEntity,
    Message,
    Scope,
    SearchHit,
    SearchResult,
    SessionInfo,
)
from ingestd.pipelines.memory.stored import ENTITY_SELECT, FACT_COLUMNS, FACT_FROM, FACT_SELECT

T = TypeVar("T")
# What the newest revision of the mem_* tables added: a database that answers it has them all.
CHECK_SQL = "SELECT f.message_ids, m.seq FROM mem_facts f, mem_messages m, mem_fact_text, mem_message_text LIMIT 0"
TRIPLE_WEIGHT = 4.0  # bm25 weight of a fact's triple against its source sentence (weight 1)


def scope_token(scope: Scope) -> str:
    """One FTS token standing for a (tenant, user), so a full-text query never leaves the user's graph."""
    return "s" + hashlib.sha256(f"{scope.tenant}\x00{scope.user_id}".encode()).hexdigest()[:24]


def _ts(value: datetime | None) -> str | None:
    # A fixed-width UTC form, so that text order is time order.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00") if value is not None else None


def _fact(row: sqlite3.Row) -> Fact:
    return stored.fact(row, datetime.fromisoformat)


def _entity(row: sqlite3.Row, aliases: Sequence[str] = ()) -> Entity:
    return stored.entity(row, datetime.fromisoformat, aliases)


# Result codes of a full disk or a failing device: the graph cannot take writes now (retried later).
_UNAVAILABLE_CODES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")


def store_error(exc: sqlite3.Error) -> errors.StoreError:
    """A driver error as ``ingestd.errors``, by the job store's rule: a refused value or statement is
    ``StoreRejected`` (the same write fails again: the step fails rather than retrying), a full disk or a broken
    file ``StoreUnavailable``, anything else (a busy database) a plain, transient ``StoreError``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(_UNAVAILABLE_CODES):
        return errors.StoreUnavailable(f"memory graph: {exc}")
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError):
        return errors.StoreRejected(f"memory graph: {exc}")
    return errors.StoreError(f"memory graph: {exc}")


def _connect(path: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise errors.StoreUnavailable(f"cannot open the memory graph: {exc}") from exc
    conn.row_factory = sqlite3.Row  # rows read by name
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def sqlite_path(url: str) -> str:
    """``sqlite:///var/x.db`` → ``var/x.db``; ``sqlite:////tmp/x.db`` → ``/tmp/x.db``."""
    path = url.split("://", 1)[1] if "://" in url else url
    path = path.split("?", 1)[0]
    return path[1:] if path.startswith("/") else path


class SqliteGraphStore:
    """``GraphStore`` on a SQLite connection used from worker threads, one statement batch at a time, and a second
    one for the message ranking, which a recall runs beside the facts' search (WAL: readers do not wait for each
    other; the two searches take 2 x 15-20 ms of CPU at 100,000 facts + 100,000 messages)."""

    def __init__(self, url: str) -> None:
        self.url = url
        path = sqlite_path(url)
        file = bool(path) and ":memory:" not in path and "mode=memory" not in url
        self._conn = _connect(path)
        self._reader = _connect(path) if file else self._conn  # an in-memory database has one connection
        self._lock = threading.Lock()
        self._reader_lock = threading.Lock() if file else self._lock
        self._vectors = hybrid.VectorCache()
        # Beside the file (none for an in-memory database): see vector_snapshot.
        self._snapshots = Path(f"{path}.vectors") if file else None

    async def _run(self, fn: Callable[[sqlite3.Connection], T], reader: bool = False) -> T:
        conn, lock = (self._reader, self._reader_lock) if reader else (self._conn, self._lock)

        def locked() -> T:
            with lock:
                try:
                    return fn(conn)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise store_error(exc) from exc

        return await asyncio.to_thread(locked)

    async def check_tables(self) -> None:
        try:
            await self._run(lambda c: c.execute(CHECK_SQL).fetchall())
        except errors.StoreError as exc:
            raise errors.StoreUnavailable(f"{MISSING_TABLES} ({exc})") from exc

    async def close(self) -> None:
        if self._reader is not self._conn:
            await self._run(lambda c: c.close(), reader=True)
        await self._run(lambda c: c.close())

    async def known_entities(self, scope: Scope) -> list[KnownEntity]:
        def read(c: sqlite3.Connection) -> list[KnownEntity]:
            aliases = c.execute(
                "SELECT alias, entity_id FROM mem_aliases WHERE tenant=? AND user_id=? ORDER BY alias",
                (scope.tenant, scope.user_id),
            ).fetchall()
            entities = c.execute(
                """SELECT e.id, e.name, e.type, v.vector FROM mem_entities e LEFT JOIN mem_embeddings v
                ON v.kind='entity' AND v.owner_id=e.id WHERE e.tenant=? AND e.user_id=? ORDER BY e.created_at, e.id""",
                (scope.tenant, scope.user_id),
            ).fetchall()
            return stored.known_entities(aliases, entities)

        return await self._run(read)

    async def current_facts(self, scope: Scope, subject_ids: list[str]) -> list[Fact]:
        if not subject_ids:
            return []
        marks = ",".join("?" * len(subject_ids))
        sql = f"{FACT_SELECT} WHERE f.tenant=? AND f.user_id=? AND f.invalid_at IS NULL AND f.subject_id IN ({marks})"
        sql += " ORDER BY f.seq"
        rows = await self._run(lambda c: c.execute(sql, (scope.tenant, scope.user_id, *subject_ids)).fetchall())
        return [_fact(r) for r in rows]

    async def apply(self, scope: Scope, changes: GraphChanges) -> ApplyOutcome:
        outcome = await self._run(lambda c: _apply(c, scope, changes))
        kinds = vector_snapshot.large_writes(changes) if outcome.applied and self._snapshots is not None else []
        if kinds:  # read them now and save the snapshot (see vector_snapshot.large_writes)
            await self._run(lambda c: [_vector_entry(c, self._vectors, self._snapshots, scope, k) for k in kinds])
        return outcome

    async def get_entity(self, scope: Scope, entity_id: str) -> Entity | None:
        def read(c: sqlite3.Connection) -> Entity | None:
            row = _entity_row(c, scope, entity_id)
            if row is None:
                return None
            aliases = [
                a["alias"]
                for a in c.execute("SELECT alias FROM mem_aliases WHERE entity_id=? ORDER BY alias", (row["id"],))
            ]
            return _entity(row, aliases)

        return await self._run(read)

    async def entity_facts(self, scope: Scope, entity_id: str) -> list[Fact]:
        sql = f"{FACT_SELECT} WHERE f.tenant=? AND f.user_id=? AND (f.subject_id=? OR f.object_id=?)"
        sql += " ORDER BY COALESCE(f.valid_at, f.created_at), f.seq"
        rows = await self._run(lambda c: c.execute(sql, (scope.tenant, scope.user_id, entity_id, entity_id)).fetchall())
        return [_fact(r) for r in rows]

    async def user_exists(self, scope: Scope) -> bool:
        row = await self._run(
            lambda c: c.execute(
                "SELECT 1 FROM mem_users WHERE tenant=? AND user_id=?", (scope.tenant, scope.user_id)
            ).fetchone()
        )
        return row is not None

    async def search(self, scope: Scope, query: str, query_vector: list[float] | None, limit: int) -> SearchResult:
        return await self._run(lambda c: _search(c, self._vectors, self._snapshots, scope, query, query_vector, limit))

    async def message_ranking(
        self, scope: Scope, terms: list[str], vector: list[float] | None
    ) -> tuple[list[str], list[str]]:
        def rank(c: sqlite3.Connection) -> tuple[list[str], list[str]]:
            text = chat.text_ranking(c, scope_token(scope), terms)
            return text, [k for k, _ in _vector_ranking(c, self._vectors, self._snapshots, scope, "message", vector)]

        return await self._run(rank, reader=True)

    async def text_ranking_among(self, scope: Scope, terms: list[str], keys: list[str]) -> list[str]:
        return await self._run(lambda c: chat.text_ranking_among(c, scope_token(scope), terms, keys), reader=True)

    async def get_messages(self, scope: Scope, keys: list[str]) -> list[Message]:
        return await self._run(lambda c: chat.get_messages(c, scope, keys))

    async def messages_with_ids(self, scope: Scope, ids: list[str]) -> list[Message]:
        return await self._run(lambda c: chat.messages_with_ids(c, scope, ids))

    async def neighbours(self, scope: Scope, keys: list[str], width: int = 1) -> list[Message]:
        return await self._run(lambda c: chat.neighbours(c, scope, keys, width))

    async def speakers(self, scope: Scope) -> list[str]:
        return await self._run(lambda c: chat.speakers(c, scope), reader=True)  # beside user_exists (the API)

    async def sessions(self, scope: Scope, limit: int, offset: int) -> list[SessionInfo]:
        return await self._run(lambda c: forget_sqlite.sessions(c, scope, limit, offset))

    async def list_messages(self, scope: Scope, session_id: str | None, limit: int, offset: int) -> list[Message]:
        return await self._run(lambda c: chat.list_messages(c, scope, session_id, limit, offset))

    async def forget(self, scope: Scope, session_id: str | None = None, message_id: str | None = None) -> Forgotten:
        forgotten = await self._run(
            lambda c: forget_sqlite.forget(c, scope, scope_token(scope), session_id, message_id)
        )
        vector_snapshot.forget(self._snapshots, scope)
        return forgotten


def _apply(c: sqlite3.Connection, scope: Scope, ch: GraphChanges) -> ApplyOutcome:
    c.execute("BEGIN IMMEDIATE")
    done = c.execute("SELECT stats FROM mem_applied_jobs WHERE job_id=?", (ch.job_id,)).fetchone()
    if done is not None:
        c.execute("ROLLBACK")
        return ApplyOutcome(applied=False, stats=json.loads(done["stats"]))
    now = _ts(utcnow())
    t, u = scope.tenant, scope.user_id
    _insert_entities(c, scope, ch, now)
    _insert_facts(c, scope, ch, now)
    chat.insert_messages(c, scope, scope_token(scope), ch, now or "")
    c.executemany(
        "UPDATE mem_facts SET invalid_at=?, invalidated_by=? "
        "WHERE id=? AND tenant=? AND user_id=? AND invalid_at IS NULL",
        [(_ts(i.invalid_at), i.by_fact_id, i.fact_id, t, u) for i in ch.invalidations],
    )
    c.execute(
        """INSERT INTO mem_users VALUES (?,?,1,?) ON CONFLICT (tenant, user_id)
        DO UPDATE SET version = version + 1, updated_at = excluded.updated_at""",
        (t, u, now),
    )
    c.execute("INSERT INTO mem_applied_jobs VALUES (?,?,?,?,?)", (ch.job_id, t, u, now, json.dumps(ch.stats)))
    c.execute("COMMIT")
    return ApplyOutcome(applied=True, stats=ch.stats)


def _insert_entities(c: sqlite3.Connection, scope: Scope, ch: GraphChanges, now: str | None) -> None:
    """Episodes, entities, their aliases and summaries, and every embedding (entities' and facts')."""
    t, u = scope.tenant, scope.user_id
    c.executemany(
        "INSERT INTO mem_episodes VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (e.id, t, u, e.session_id, e.index, e.content, _ts(e.started_at), _ts(e.reference_time), ch.job_id, now)
            for e in ch.episodes
        ],
    )
    c.executemany(
        "INSERT INTO mem_entities VALUES (?,?,?,?,?,?,?,?)",
        [(e.id, t, u, e.name, e.type, e.summary, now, now) for e in ch.entities],
    )
    c.executemany("INSERT OR REPLACE INTO mem_embeddings VALUES (?,?,?,?,?,?)", stored.embeddings(scope, ch))
    c.executemany(
        "INSERT OR IGNORE INTO mem_aliases VALUES (?,?,?,?)", [(t, u, a.alias, a.entity_id) for a in ch.aliases]
    )
    c.executemany(
        "UPDATE mem_entities SET summary=?, updated_at=? WHERE id=? AND tenant=? AND user_id=?",
        [(s, now, i, t, u) for i, s in ch.summaries.items()],
    )


def _insert_facts(c: sqlite3.Connection, scope: Scope, ch: GraphChanges, now: str | None) -> None:
    names = {e.id: e.name for e in ch.entities}
    missing = {f.subject_id for f in ch.facts} - names.keys()
    for entity_id, name in (
        c.execute(
            f"SELECT id, name FROM mem_entities WHERE id IN ({','.join('?' * len(missing))})", tuple(missing)
        ).fetchall()
        if missing
        else []
    ):
        names[entity_id] = name
    token = scope_token(scope)
    for f in ch.facts:
        c.execute(
            """INSERT INTO mem_facts (id, tenant, user_id, subject_id, predicate, object_id, object, sentence, valid_at,
            invalid_at, created_at, episode_id, job_id, message_ids) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (f.id, scope.tenant, scope.user_id, f.subject_id, f.predicate, f.object_id, f.object, f.sentence,
             _ts(f.valid_at), _ts(f.invalid_at), now, f.episode_id, ch.job_id, json.dumps(f.message_ids)),
        )  # fmt: skip
        triple, sentence = hybrid.fact_search_texts(names.get(f.subject_id, ""), f.predicate, f.object, f.sentence)
        c.execute(
            "INSERT INTO mem_fact_text (scope, triple, sentence, fact_id) VALUES (?,?,?,?)",
            (token, triple, sentence, f.id),
        )


def _entity_row(c: sqlite3.Connection, scope: Scope, entity_id: str) -> sqlite3.Row | None:
    """The user's entity ``entity_id`` ("+": found by its key, the scope checked on the one row)."""
    row: sqlite3.Row | None = c.execute(
        f"{ENTITY_SELECT} WHERE id=? AND +tenant=? AND +user_id=?",
        (entity_id, scope.tenant, scope.user_id),
    ).fetchone()
    return row


def _version(c: sqlite3.Connection, scope: Scope) -> int:
    row = c.execute(
        "SELECT version FROM mem_users WHERE tenant=? AND user_id=?", (scope.tenant, scope.user_id)
    ).fetchone()
    return int(row["version"]) if row else 0


def _vector_ranking(
    c: sqlite3.Connection,
    cache: hybrid.VectorCache,
    snapshots: Path | None,
    scope: Scope,
    kind: str,
    vector: list[float] | None,
) -> list[tuple[str, float]]:
    if not vector:
        return []
    entry = _vector_entry(c, cache, snapshots, scope, kind)
    return hybrid.nearest(entry, vector) if entry is not None else []


def _vector_entry(
    c: sqlite3.Connection, cache: hybrid.VectorCache, snapshots: Path | None, scope: Scope, kind: str
) -> hybrid.CachedMatrix | None:
    """The user's vectors of ``kind`` as of their graph's version: cached, from the snapshot, or read."""
    version = _version(c, scope)
    row = c.execute(
        """SELECT model FROM mem_embeddings WHERE tenant=? AND user_id=? AND kind=?
        ORDER BY tenant, user_id, kind, model LIMIT 1""",
        (scope.tenant, scope.user_id, kind),
    ).fetchone()
    if row is None:
        return None
    model = row["model"]
    entry = cache.get(scope, kind, model)
    if entry is None and snapshots is not None:
        entry = _from_snapshot(c, cache, snapshots, scope, kind, model, version)
    if entry is None or entry.version != version:
        since = entry.last_seq if entry is not None else 0
        batch = _read_vectors(c, scope, kind, model, since)
        entry = cache.refresh(scope, kind, model, version, batch, since)
        if entry is None:  # a vector was replaced: read them all again
            since = 0
            batch = _read_vectors(c, scope, kind, model, 0)
            entry = cache.refresh(scope, kind, model, version, batch, 0)
        assert entry is not None
        to_save = vector_snapshot.after_read(entry, batch, since, version)
        if snapshots is not None and to_save is not None:
            vector_snapshot.save_soon(snapshots, scope, kind, model, to_save)
    return entry


def _read_vectors(c: sqlite3.Connection, scope: Scope, kind: str, model: str, since: int) -> hybrid.VectorBatch:
    """The user's vectors of ``kind`` written after row ``since``: rowid order is commit order (one writer), so
    the rows after the cached ones are the new ones."""
    rows = c.execute(
        """SELECT rowid AS seq, owner_id, vector FROM mem_embeddings
        WHERE tenant=? AND user_id=? AND kind=? AND model=? AND rowid > ? ORDER BY rowid""",
        (scope.tenant, scope.user_id, kind, model, since),
    ).fetchall()
    last_seq = int(rows[-1]["seq"]) if rows else since
    return hybrid.VectorBatch.of_blobs([r["owner_id"] for r in rows], [r["vector"] for r in rows], last_seq)


def _from_snapshot(
    c: sqlite3.Connection,
    cache: hybrid.VectorCache,
    snapshots: Path,
    scope: Scope,
    kind: str,
    model: str,
    version: int,
) -> hybrid.CachedMatrix | None:
    """The matrix a process saved before, when it belongs to this database (see ``vector_snapshot``)."""
    snapshot = vector_snapshot.load(snapshots, scope, kind, model)
    if snapshot is None or snapshot.version > version:
        return None
    row = c.execute(
        "SELECT owner_id FROM mem_embeddings WHERE rowid=? AND kind=? AND model=? AND tenant=? AND user_id=?",
        (snapshot.last_seq, kind, model, scope.tenant, scope.user_id),
    ).fetchone()
    if row is None or row["owner_id"] != snapshot.last_owner:
        return None
    return cache.put(
        scope, kind, model, snapshot.version, snapshot.ids, snapshot.matrix, snapshot.last_seq, snapshot.quantized
    )


def _text_ranking(c: sqlite3.Connection, scope: Scope, terms: list[str]) -> list[str]:
    """Facts matching every term ranked by bm25, then facts matching any term, newest first."""
    if not terms:
        return []
    token = scope_token(scope)
    every = f"{{triple sentence}}:({hybrid.fts5_match(terms, 'AND')})"
    rank = f"bm25(mem_fact_text, 0.0, {TRIPLE_WEIGHT}, 1.0)"
    ranked = chat.ranked_window(c, "mem_fact_text", every, token, rank, "fact_id")
    if len(ranked) >= hybrid.CANDIDATES or len(terms) == 1:
        return ranked
    newest = c.execute(
        "SELECT fact_id FROM mem_fact_text WHERE mem_fact_text MATCH ? AND +scope = ? ORDER BY rowid DESC LIMIT ?",
        (f"{{triple sentence}}:({hybrid.fts5_match(terms)})", token, hybrid.CANDIDATES),
    )
    return hybrid.merge_rankings(ranked, [r["fact_id"] for r in newest])


def _search(
    c: sqlite3.Connection,
    cache: hybrid.VectorCache,
    snapshots: Path | None,
    scope: Scope,
    query: str,
    vector: list[float] | None,
    limit: int,
) -> SearchResult:
    terms = hybrid.query_terms(query)
    text_ids = _text_ranking(c, scope, terms)
    vector_ids = [i for i, _ in _vector_ranking(c, cache, snapshots, scope, "fact", vector)]
    scores = hybrid.fuse(text_ids, vector_ids)
    order = [
        hybrid.FactOrder(r["id"], r["invalid_at"] is None, datetime.fromisoformat(r["created_at"]))
        for r in _fact_rows(c, scope, "f.id, f.invalid_at, f.created_at", list(scores))
    ]
    best = hybrid.best_fact_ids(order, scores, limit)
    facts = [_fact(r) for r in _fact_rows(c, scope, FACT_COLUMNS, best)]
    hits = [SearchHit(f, s) for f, s in hybrid.in_order(facts, best, scores)]
    return SearchResult(facts=hits, entities=_entity_hits(c, cache, snapshots, scope, terms, vector))


def _fact_rows(c: sqlite3.Connection, scope: Scope, columns: str, ids: list[str]) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # "+" keeps SQLite on the id index: the (tenant, user_id) indexes would scan the user's whole graph.
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {columns} {FACT_FROM} WHERE f.id IN ({marks}) AND +f.tenant=? AND +f.user_id=?"
        rows += c.execute(sql, (*chunk, scope.tenant, scope.user_id)).fetchall()
    return rows


def _entity_hits(
    c: sqlite3.Connection,
    cache: hybrid.VectorCache,
    snapshots: Path | None,
    scope: Scope,
    terms: list[str],
    vector: list[float] | None,
) -> list[EntityHit]:
    nearest = _vector_ranking(c, cache, snapshots, scope, "entity", vector)
    named = [
        r["entity_id"]
        for t in terms
        for r in c.execute(
            "SELECT DISTINCT entity_id FROM mem_aliases WHERE tenant=? AND user_id=? AND (' ' || alias || ' ') LIKE ?",
            (scope.tenant, scope.user_id, f"% {t} %"),
        )
    ]
    hits: list[EntityHit] = []
    for entity_id, score in hybrid.best_entities(named, nearest):
        row = _entity_row(c, scope, entity_id)
        if row is not None:
            hits.append(EntityHit(_entity(row), score))
    return hits
