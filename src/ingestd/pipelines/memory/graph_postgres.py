"""The memory graph in PostgreSQL (asyncpg): tsvector + GIN for full text, float32 vectors in ``bytea``.

Vectors are stored as raw float32 bytes rather than ``real[]``: the search loads a user's vectors once per graph
version into an in-process matrix (``search.VectorCache``), and bytes decode about 50 times faster than arrays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from ingestd import errors
from ingestd.pipelines.memory import forget_postgres, stored, vector_snapshot
from ingestd.pipelines.memory import messages_postgres as chat
from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory import snapshots_postgres as snapshots
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
    NewFact,
    Scope,
    SearchHit,
    SearchResult,
    SessionInfo,
)
from ingestd.pipelines.memory.stored import ENTITY_SELECT, FACT_COLUMNS, FACT_SELECT
from ingestd.pipelines.memory.vector_snapshot import Snapshot

T = TypeVar("T")
log = logging.getLogger("ingestd.memory.graph")
# What the newest revision of the mem_* tables added: a database that answers it has them all.
CHECK_SQL = """SELECT f.message_ids, m.seq, e.seq, s.token FROM mem_facts f, mem_messages m, mem_embeddings e,
    mem_vector_snapshots s LIMIT 0"""
SNAPSHOT_WAIT = 30.0  # seconds close() lets a vector snapshot being written finish

# SQLSTATE classes of a statement refused for what it says (the job store's rule): data exception, integrity
# violation, syntax error or access rule violation, program limit exceeded. The same write fails again.
_REFUSED_CLASSES = ("22", "23", "42", "54")


def store_error(exc: asyncpg.PostgresError) -> errors.StoreError:
    """A server error as ``ingestd.errors``: ``StoreRejected`` when retrying cannot help, else ``StoreError``."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    message = f"memory graph: {type(exc).__name__}: {exc}"
    if sqlstate[:2] in _REFUSED_CLASSES:
        return errors.StoreRejected(message, sqlstate=sqlstate)
    return errors.StoreError(message)


def _fact(r: asyncpg.Record) -> Fact:
    return stored.fact(r, stored.as_is)


def _entity(r: asyncpg.Record, aliases: Sequence[str] = ()) -> Entity:
    return stored.entity(r, stored.as_is, aliases)


class _Connection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """A pooled connection released without asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL``): the graph leaves no session state behind (no session locks, cursors, LISTEN or
    SET; its transactions end with their blocks), and that query was a round trip on every release, 5 of a
    recall's 20 statements."""

    def get_reset_query(self) -> str:
        return ""


class PostgresGraphStore:
    """``GraphStore`` on an asyncpg pool."""

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self.url = url
        self._pool = pool
        self._vectors = hybrid.VectorCache()
        self._saving: set[asyncio.Task[None]] = set()
        self._local = snapshots.local_dir(url)  # this host's copies of the stored snapshots

    @classmethod
    async def connect(cls, url: str, max_size: int = 4) -> PostgresGraphStore:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        try:
            # Custom plans: a generic plan cannot tell a common word (scan the newest rows) from a rare one (the
            # GIN index), nor one user's embeddings from another's; planning costs well under a millisecond.
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=max_size,
                server_settings={"plan_cache_mode": "force_custom_plan"},
                connection_class=_Connection,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise errors.StoreUnavailable(f"cannot reach the memory graph database: {exc}") from exc
        return cls(url, pool)

    async def check_tables(self) -> None:
        try:
            async with self._pool.acquire() as c:
                await c.fetch(CHECK_SQL)
        except asyncpg.PostgresError as exc:
            raise errors.StoreUnavailable(f"{MISSING_TABLES} ({exc})") from exc

    async def close(self) -> None:
        if self._saving:  # a snapshot being written: let it finish (seconds), it saves the next start a read
            _, pending = await asyncio.wait(set(self._saving), timeout=SNAPSHOT_WAIT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._pool.close()

    def _save_soon(self, scope: Scope, kind: str, model: str, snapshot: Snapshot) -> None:
        """Write the user's snapshot in the background (a search does not wait for it); a failure only costs the
        next process a read row by row."""

        async def save() -> None:
            try:
                await snapshots.save(self._pool, scope, kind, model, snapshot, self._local)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("memory graph: vector snapshot not saved: %s", exc)

        task = asyncio.create_task(save())
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def known_entities(self, scope: Scope) -> list[KnownEntity]:
        async with self._pool.acquire() as c:
            aliases = await c.fetch(
                "SELECT alias, entity_id FROM mem_aliases WHERE tenant=$1 AND user_id=$2 ORDER BY alias", *_s(scope)
            )
            entities = await c.fetch(
                """SELECT e.id, e.name, e.type, v.vector FROM mem_entities e LEFT JOIN mem_embeddings v
                ON v.kind='entity' AND v.owner_id=e.id WHERE e.tenant=$1 AND e.user_id=$2
                ORDER BY e.created_at, e.id""",
                *_s(scope),
            )
        return stored.known_entities(aliases, entities)

    async def current_facts(self, scope: Scope, subject_ids: list[str]) -> list[Fact]:
        sql = f"{FACT_SELECT} WHERE f.tenant=$1 AND f.user_id=$2 AND f.invalid_at IS NULL AND f.subject_id = ANY($3)"
        async with self._pool.acquire() as c:
            return [_fact(r) for r in await c.fetch(sql + " ORDER BY f.seq", *_s(scope), subject_ids)]

    async def apply(self, scope: Scope, changes: GraphChanges) -> ApplyOutcome:
        try:
            outcome = await self._apply(scope, changes)
            if outcome.applied and len(changes.facts) + len(changes.messages) >= vector_snapshot.CATCH_UP_ROWS:
                await self._after_large_apply(scope, changes)
            return outcome
        except asyncpg.PostgresError as exc:
            raise store_error(exc) from exc

    async def _apply(self, scope: Scope, changes: GraphChanges) -> ApplyOutcome:
        async with self._pool.acquire() as c, c.transaction():
            # Serialise applies of one user (and make a concurrent retry of the same job wait, then see it done).
            await c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"memory:{scope.tenant}/{scope.user_id}")
            done = await c.fetchval("SELECT stats FROM mem_applied_jobs WHERE job_id=$1", changes.job_id)
            if done is not None:
                return ApplyOutcome(applied=False, stats=json.loads(done))
            await _apply(c, scope, changes)
        return ApplyOutcome(applied=True, stats=changes.stats)

    async def _after_large_apply(self, scope: Scope, changes: GraphChanges) -> None:
        """Fresh planner statistics (a server with autovacuum off would otherwise plan a 100,000-row memory as
        an empty one: full-text searches scanned every row, 170 ms each), and the new vectors read now with the
        snapshot saved (see vector_snapshot.large_writes)."""
        async with self._pool.acquire() as c:
            await c.execute("ANALYZE mem_facts, mem_messages, mem_embeddings, mem_entities")
            kinds = vector_snapshot.large_writes(changes)
            state = await _vector_state(c, scope, kinds)
            for kind in kinds:
                await self._entry(c, scope, kind, state)

    async def get_entity(self, scope: Scope, entity_id: str) -> Entity | None:
        async with self._pool.acquire() as c:
            row = await c.fetchrow(f"{ENTITY_SELECT} WHERE id=$3 AND tenant=$1 AND user_id=$2", *_s(scope), entity_id)
            if row is None:
                return None
            aliases = await c.fetch("SELECT alias FROM mem_aliases WHERE entity_id=$1 ORDER BY alias", entity_id)
        return _entity(row, [a["alias"] for a in aliases])

    async def entity_facts(self, scope: Scope, entity_id: str) -> list[Fact]:
        sql = f"{FACT_SELECT} WHERE f.tenant=$1 AND f.user_id=$2 AND (f.subject_id=$3 OR f.object_id=$3)"
        async with self._pool.acquire() as c:
            rows = await c.fetch(sql + " ORDER BY COALESCE(f.valid_at, f.created_at), f.seq", *_s(scope), entity_id)
        return [_fact(r) for r in rows]

    async def user_exists(self, scope: Scope) -> bool:
        async with self._pool.acquire() as c:
            return bool(await c.fetchval("SELECT 1 FROM mem_users WHERE tenant=$1 AND user_id=$2", *_s(scope)))

    async def search(self, scope: Scope, query: str, query_vector: list[float] | None, limit: int) -> SearchResult:
        terms = hybrid.query_terms(query)
        # The full text on one connection while the other reads the version, the named entities and the vectors:
        # the server ranks while this process scans the matrices.
        text_ids, (vector_ids, named, nearest_entities) = await asyncio.gather(
            self._read(lambda c: _text_ranking(c, scope, terms)), self._fact_vectors(scope, terms, query_vector)
        )
        scores = hybrid.fuse(text_ids, vector_ids)
        top = hybrid.best_entities(named, nearest_entities)
        async with self._pool.acquire() as c:
            facts = [_fact(r) for r in await _best_facts(c, scope, scores, limit)]
            rows = {
                r["id"]: r
                for r in await c.fetch(
                    f"{ENTITY_SELECT} WHERE tenant=$1 AND user_id=$2 AND id = ANY($3)",
                    *_s(scope),
                    [i for i, _ in top],
                )
            } if top else {}  # fmt: skip
        hits = [SearchHit(f, scores.get(f.id, 0.0)) for f in facts]
        entities = [EntityHit(_entity(rows[i]), s) for i, s in top if i in rows]
        return SearchResult(facts=hits, entities=entities)

    async def _fact_vectors(
        self, scope: Scope, terms: list[str], vector: list[float] | None
    ) -> tuple[list[str], list[str], list[tuple[str, float]]]:
        """The facts nearest ``vector``, the entities an alias of which holds one of ``terms``, and the entities
        nearest ``vector``: one statement for what the store holds, then the scans."""
        async with self._pool.acquire() as c:
            state = await _vector_state(c, scope, ("fact", "entity"), terms)
            facts = await self._entry(c, scope, "fact", state) if vector else None
            entities = await self._entry(c, scope, "entity", state) if vector else None
        nearest_facts, nearest_entities = _nearest_in((facts, entities), vector)
        return [i for i, _ in nearest_facts], state.named, nearest_entities

    async def message_ranking(
        self, scope: Scope, terms: list[str], vector: list[float] | None
    ) -> tuple[list[str], list[str]]:
        async def dense() -> list[str]:
            if not vector:
                return []
            async with self._pool.acquire() as c:
                state = await _vector_state(c, scope, ("message",))
                entry = await self._entry(c, scope, "message", state)
            (nearest,) = _nearest_in((entry,), vector)
            return [k for k, _ in nearest]

        text, vectors = await asyncio.gather(self._read(lambda c: chat.text_ranking(c, scope, terms)), dense())
        return text, vectors

    async def _read(self, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._pool.acquire() as c:
            return await read(c)

    async def text_ranking_among(self, scope: Scope, terms: list[str], keys: list[str]) -> list[str]:
        async with self._pool.acquire() as c:
            return await chat.text_ranking_among(c, scope, terms, keys)

    async def get_messages(self, scope: Scope, keys: list[str]) -> list[Message]:
        async with self._pool.acquire() as c:
            return await chat.get_messages(c, scope, keys)

    async def messages_with_ids(self, scope: Scope, ids: list[str]) -> list[Message]:
        async with self._pool.acquire() as c:
            return await chat.messages_with_ids(c, scope, ids)

    async def neighbours(self, scope: Scope, keys: list[str], width: int = 1) -> list[Message]:
        async with self._pool.acquire() as c:
            return await chat.neighbours(c, scope, keys, width)

    async def speakers(self, scope: Scope) -> list[str]:
        async with self._pool.acquire() as c:
            return await chat.speakers(c, scope)

    async def sessions(self, scope: Scope, limit: int, offset: int) -> list[SessionInfo]:
        async with self._pool.acquire() as c:
            return await forget_postgres.sessions(c, scope, limit, offset)

    async def list_messages(self, scope: Scope, session_id: str | None, limit: int, offset: int) -> list[Message]:
        async with self._pool.acquire() as c:
            return await chat.list_messages(c, scope, session_id, limit, offset)

    async def forget(self, scope: Scope, session_id: str | None = None, message_id: str | None = None) -> Forgotten:
        async with self._pool.acquire() as c:
            forgotten = await forget_postgres.forget(c, scope, session_id, message_id)
            await snapshots.forget(c, scope)  # no copy of a deleted vector stays
            vector_snapshot.forget(self._local, scope)  # other hosts' copies go on their next load
            return forgotten

    async def _entry(self, c: asyncpg.Connection, scope: Scope, kind: str, state: _State) -> hybrid.CachedMatrix | None:
        model = state.models.get(kind)
        return await self._vector_entry(c, scope, kind, state.version, model) if model is not None else None

    async def _vector_entry(
        self, c: asyncpg.Connection, scope: Scope, kind: str, version: int, model: str
    ) -> hybrid.CachedMatrix:
        """The user's vectors of ``kind`` as of their graph's ``version``: cached, from the snapshot, or read."""
        entry = self._vectors.get(scope, kind, model)
        if entry is None:
            snapshot = await snapshots.load(c, scope, kind, model, version, self._local)
            if snapshot is not None:
                entry = self._vectors.put(
                    scope,
                    kind,
                    model,
                    snapshot.version,
                    snapshot.ids,
                    snapshot.matrix,
                    snapshot.last_seq,
                    snapshot.quantized,
                )
        if entry is None or entry.version != version:
            since = entry.last_seq if entry is not None else 0
            batch = await snapshots.read_vectors(c, scope, kind, model, since)
            entry = self._vectors.refresh(scope, kind, model, version, batch, since)
            if entry is None:  # a vector was replaced: read them all again
                since = 0
                batch = await snapshots.read_vectors(c, scope, kind, model, 0)
                entry = self._vectors.refresh(scope, kind, model, version, batch, 0)
            assert entry is not None
            to_save = vector_snapshot.after_read(entry, batch, since, version)
            if to_save is not None:
                self._save_soon(scope, kind, model, to_save)
        return entry


@dataclass(frozen=True)
class _State:
    """What a search reads first, in one statement: the user's graph version, the embedding model of each kind
    of vector (absent: none stored), and the entities an alias of which holds a query word."""

    version: int
    models: dict[str, str]
    named: list[str]


async def _vector_state(c: asyncpg.Connection, scope: Scope, kinds: Sequence[str], terms: Sequence[str] = ()) -> _State:
    # Each model read as the index is ordered, so that it is read: a plain LIMIT 1 can pick a sequential scan that
    # passes over every other kind's rows first (263 ms at 100k facts + 100k messages).
    row = await c.fetchrow(
        """SELECT (SELECT version FROM mem_users WHERE tenant=$1 AND user_id=$2) AS version,
        ARRAY(SELECT (SELECT model FROM mem_embeddings WHERE tenant=$1 AND user_id=$2 AND kind=k.kind
            ORDER BY tenant, user_id, kind, model LIMIT 1) FROM unnest($3::text[]) WITH ORDINALITY AS k(kind, n)
            ORDER BY k.n) AS models,
        ARRAY(SELECT DISTINCT entity_id FROM mem_aliases WHERE tenant=$1 AND user_id=$2
            AND string_to_array(alias, ' ') && $4::text[] ORDER BY entity_id) AS named""",
        *_s(scope),
        list(kinds),
        list(terms),
    )
    assert row is not None
    models = {k: m for k, m in zip(kinds, row["models"], strict=True) if m is not None}
    return _State(row["version"] or 0, models, list(row["named"]))


def _nearest_in(
    entries: Sequence[hybrid.CachedMatrix | None], vector: list[float] | None
) -> list[list[tuple[str, float]]]:
    """``search.nearest`` in each of ``entries`` (none: no vectors of that kind)."""
    return [hybrid.nearest(e, vector) if e is not None and vector else [] for e in entries]


async def _best_facts(
    c: asyncpg.Connection, scope: Scope, scores: dict[str, float], limit: int
) -> list[asyncpg.Record]:
    """The best ``limit`` of the scored facts, read whole in one statement: current facts first, then by fused
    score, then newest, then by id (``search.best_fact_ids``'s order; ids compared byte by byte, as Python does)."""
    if not scores:
        return []
    rows: list[asyncpg.Record] = await c.fetch(
        f"""SELECT {FACT_COLUMNS} FROM unnest($3::text[], $4::float8[]) AS c(id, score)
        JOIN mem_facts f ON f.id = c.id JOIN mem_entities s ON s.id = f.subject_id
        LEFT JOIN mem_entities o ON o.id = f.object_id WHERE f.tenant=$1 AND f.user_id=$2
        ORDER BY f.invalid_at IS NOT NULL, c.score DESC, f.created_at DESC, f.id COLLATE "C" LIMIT $5""",
        *_s(scope),
        list(scores),
        list(scores.values()),
        limit,
    )
    return rows


async def _text_ranking(c: asyncpg.Connection, scope: Scope, terms: list[str]) -> list[str]:
    """Facts matching every term ranked by ts_rank, then facts matching any term, newest first."""
    if not terms:
        return []
    ranked = [
        r["id"]
        for r in await c.fetch(
            """SELECT id FROM (SELECT id, seq, tsv FROM mem_facts WHERE tenant=$1 AND user_id=$2
            AND tsv @@ to_tsquery('simple', $3) ORDER BY seq DESC LIMIT $5) newest
            ORDER BY ts_rank(tsv, to_tsquery('simple', $3)) DESC, seq DESC LIMIT $4""",
            *_s(scope),
            hybrid.tsquery(terms, "&"),
            hybrid.CANDIDATES,
            hybrid.RANK_WINDOW,
        )
    ]
    if len(ranked) >= hybrid.CANDIDATES or len(terms) == 1:
        return ranked
    newest = await c.fetch(
        """SELECT id FROM mem_facts WHERE tenant=$1 AND user_id=$2 AND tsv @@ to_tsquery('simple', $3)
        ORDER BY seq DESC LIMIT $4""",
        *_s(scope),
        hybrid.tsquery(terms),
        hybrid.CANDIDATES,
    )
    return hybrid.merge_rankings(ranked, [r["id"] for r in newest])


def _search_texts(names: dict[str, str], fact: NewFact) -> tuple[str, str]:
    return hybrid.fact_search_texts(names.get(fact.subject_id, ""), fact.predicate, fact.object, fact.sentence)


def _s(scope: Scope) -> tuple[str, str]:
    return scope.tenant, scope.user_id


async def _apply(c: asyncpg.Connection, scope: Scope, ch: GraphChanges) -> None:
    await _apply_entities(c, scope, ch)
    await _apply_facts(c, scope, ch)
    await chat.insert_messages(c, scope, ch)
    t, u = _s(scope)
    await c.execute(
        """INSERT INTO mem_users VALUES ($1,$2,1,now()) ON CONFLICT (tenant, user_id)
        DO UPDATE SET version = mem_users.version + 1, updated_at = now()""",
        t,
        u,
    )
    await c.execute("INSERT INTO mem_applied_jobs VALUES ($1,$2,$3,now(),$4)", ch.job_id, t, u, json.dumps(ch.stats))


async def _apply_entities(c: asyncpg.Connection, scope: Scope, ch: GraphChanges) -> None:
    """Episodes, entities, their aliases and summaries, and every embedding (entities' and facts')."""
    t, u = _s(scope)
    await c.executemany(
        "INSERT INTO mem_episodes VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,now())",
        [
            (e.id, t, u, e.session_id, e.index, e.content, e.started_at, e.reference_time, ch.job_id)
            for e in ch.episodes
        ],
    )
    await c.executemany(
        "INSERT INTO mem_entities VALUES ($1,$2,$3,$4,$5,$6,now(),now())",
        [(e.id, t, u, e.name, e.type, e.summary) for e in ch.entities],
    )
    await c.executemany(
        """INSERT INTO mem_embeddings (kind, owner_id, tenant, user_id, model, vector) VALUES ($1,$2,$3,$4,$5,$6)
        ON CONFLICT (kind, owner_id) DO UPDATE SET vector = excluded.vector, model = excluded.model,
        seq = nextval(pg_get_serial_sequence('mem_embeddings', 'seq'))""",
        stored.embeddings(scope, ch),
    )
    await c.executemany(
        "INSERT INTO mem_aliases VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING",
        [(t, u, a.alias, a.entity_id) for a in ch.aliases],
    )
    await c.executemany(
        "UPDATE mem_entities SET summary=$1, updated_at=now() WHERE id=$2 AND tenant=$3 AND user_id=$4",
        [(s, i, t, u) for i, s in ch.summaries.items()],
    )


async def _apply_facts(c: asyncpg.Connection, scope: Scope, ch: GraphChanges) -> None:
    """New facts (with their full-text columns) and the invalidations of older ones."""
    t, u = _s(scope)
    names = {e.id: e.name for e in ch.entities}
    missing = list({f.subject_id for f in ch.facts} - names.keys())
    names |= {
        r["id"]: r["name"] for r in await c.fetch("SELECT id, name FROM mem_entities WHERE id = ANY($1)", missing)
    }
    await c.executemany(
        """INSERT INTO mem_facts (id, tenant, user_id, subject_id, predicate, object_id, object, sentence, valid_at,
        invalid_at, created_at, episode_id, job_id, triple_text, sentence_text, message_ids)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,now(),$11,$12,$13,$14,$15)""",
        [
            (f.id, t, u, f.subject_id, f.predicate, f.object_id, f.object, f.sentence, f.valid_at, f.invalid_at,
             f.episode_id, ch.job_id, *_search_texts(names, f), json.dumps(f.message_ids))
            for f in ch.facts
        ],
    )  # fmt: skip
    await c.executemany(
        """UPDATE mem_facts SET invalid_at=$1, invalidated_by=$2
        WHERE id=$3 AND tenant=$4 AND user_id=$5 AND invalid_at IS NULL""",
        [(i.invalid_at, i.by_fact_id, i.fact_id, t, u) for i in ch.invalidations],
    )
