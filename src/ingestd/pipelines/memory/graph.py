"""The knowledge-graph store of the memory pipeline: a small ``GraphStore`` protocol and its data.

The graph lives in ingestd's own database (the same URL as the job store), in tables prefixed ``mem_`` that the job
store's Alembic migrations make (revision 0007):
entities, their aliases (normalised spellings), facts with ``valid_at``/``invalid_at``/``created_at`` and their
source episode and job, episodes, embeddings, and the jobs already applied. Every query is scoped to one
``Scope`` (tenant + user): one user's graph never sees another's.

``open_graph_store(url)`` picks the backend from the URL, like ``ingestd.store.open_store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ingestd import errors

MISSING_TABLES = (
    "the memory graph's tables are missing or older than this version of ingestd: migrate the database "
    "(`ingestd migrate`; an ingestd server or worker does it when it starts)"
)


@dataclass(frozen=True)
class Scope:
    """Whose graph: a tenant (from the API key) and one of its users."""

    tenant: str
    user_id: str


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str
    summary: str
    aliases: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Fact:
    """A statement ``subject predicate object``, true from ``valid_at`` until ``invalid_at`` (None: still true)."""

    id: str
    subject_id: str
    subject: str
    predicate: str
    object_id: str | None  # None when the object is a plain value ("data scientist")
    object: str
    sentence: str
    valid_at: datetime | None
    invalid_at: datetime | None
    created_at: datetime
    episode_id: str
    job_id: str
    message_ids: tuple[str, ...] = ()  # the client ids of the messages it was read from

    @property
    def current(self) -> bool:
        return self.invalid_at is None


@dataclass(frozen=True)
class Message:
    """One stored chat message: who said what, when, in which session; ``content`` shows resolved dates."""

    key: str  # the store's own key (search rankings are lists of keys)
    id: str  # the client's id ("<session_id>:<index>" by default)
    session_id: str
    index: int
    role: str
    speaker: str  # the name given, else the role
    content: str
    at: datetime
    dates: tuple[str, ...]  # the dates it mentions, resolved and labelled ("7 May 2023")


@dataclass(frozen=True)
class MessageHit:
    message: Message
    score: float


@dataclass(frozen=True)
class KnownEntity:
    """What resolution needs to know of an existing entity."""

    id: str
    name: str
    type: str
    aliases: tuple[str, ...]  # normalised spellings
    embedding: list[float] | None


@dataclass(frozen=True)
class SearchHit:
    fact: Fact
    score: float


@dataclass(frozen=True)
class EntityHit:
    entity: Entity
    score: float


@dataclass(frozen=True)
class SearchResult:
    facts: list[SearchHit]
    entities: list[EntityHit]
    messages: list[MessageHit] = field(default_factory=list)


# --- the changes one job makes (computed by ``resolve``, checkpointed, written by ``apply``) -----------------


@dataclass(frozen=True)
class NewEpisode:
    id: str
    session_id: str
    index: int
    content: str
    started_at: datetime | None
    reference_time: datetime | None


@dataclass(frozen=True)
class NewEntity:
    id: str
    name: str
    type: str
    summary: str
    embedding: list[float] | None


@dataclass(frozen=True)
class NewAlias:
    entity_id: str
    alias: str  # normalised


@dataclass(frozen=True)
class NewFact:
    id: str
    subject_id: str
    predicate: str
    object_id: str | None
    object: str
    sentence: str
    valid_at: datetime | None
    invalid_at: datetime | None
    episode_id: str
    embedding: list[float] | None
    message_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NewMessage:
    id: str  # the client's id
    session_id: str
    index: int
    role: str
    speaker: str
    content: str  # with resolved dates shown ("yesterday [7 May 2023]")
    at: datetime
    dates: list[str]
    embedding: list[float] | None


@dataclass(frozen=True)
class Invalidation:
    fact_id: str
    invalid_at: datetime
    by_fact_id: str


@dataclass(frozen=True)
class GraphChanges:
    """Everything one job adds to a user's graph; applied in one transaction, at most once per ``job_id``."""

    job_id: str
    embedding_model: str
    episodes: list[NewEpisode] = field(default_factory=list)
    entities: list[NewEntity] = field(default_factory=list)
    aliases: list[NewAlias] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)  # entity id -> longer summary learnt
    facts: list[NewFact] = field(default_factory=list)
    invalidations: list[Invalidation] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyOutcome:
    applied: bool  # False: this job's changes were already in the graph (a retried apply)
    stats: dict[str, Any]


@runtime_checkable
class GraphStore(Protocol):
    """A user-scoped temporal knowledge graph. Implementations: SQLite (FTS5) and PostgreSQL (tsvector)."""

    url: str

    async def check_tables(self) -> None:
        """Raise ``StoreUnavailable`` unless the database holds the ``mem_*`` tables as this version reads them.
        The job store's migrations make them (revision 0007: ``ingestd migrate``, or any ingestd process opening
        its store); the graph itself runs no DDL."""
        ...

    async def close(self) -> None: ...

    async def known_entities(self, scope: Scope) -> list[KnownEntity]:
        """Every entity of the user with its aliases and name embedding (for resolution)."""
        ...

    async def current_facts(self, scope: Scope, subject_ids: list[str]) -> list[Fact]:
        """The still-valid facts about the given subjects."""
        ...

    async def apply(self, scope: Scope, changes: GraphChanges) -> ApplyOutcome:
        """Write ``changes`` in one transaction, unless ``changes.job_id`` was applied already."""
        ...

    async def get_entity(self, scope: Scope, entity_id: str) -> Entity | None: ...

    async def entity_facts(self, scope: Scope, entity_id: str) -> list[Fact]:
        """Every fact (current and past) with the entity as subject or object, oldest first."""
        ...

    async def search(self, scope: Scope, query: str, query_vector: list[float] | None, limit: int) -> SearchResult:
        """Hybrid search: full text and embedding similarity fused; current facts before past ones."""
        ...

    async def user_exists(self, scope: Scope) -> bool: ...

    async def message_ranking(
        self, scope: Scope, terms: list[str], vector: list[float] | None
    ) -> tuple[list[str], list[str]]:
        """Message keys ranked by full text (bm25 / ts_rank over any of ``terms``) and by vector similarity."""
        ...

    async def text_ranking_among(self, scope: Scope, terms: list[str], keys: list[str]) -> list[str]:
        """Those of ``keys`` that the full-text ranking of ``terms`` finds, in its order (``message_ranking``'s,
        statistics of all the user's messages: SQLite within the newest ``RANK_WINDOW`` matches)."""
        ...

    async def get_messages(self, scope: Scope, keys: list[str]) -> list[Message]:
        """The messages with these keys (any order; unknown keys are left out)."""
        ...

    async def messages_with_ids(self, scope: Scope, ids: list[str]) -> list[Message]:
        """The messages with these client ids (any order; unknown ids are left out)."""
        ...

    async def neighbours(self, scope: Scope, keys: list[str], width: int = 1) -> list[Message]:
        """The messages at most ``width`` places before or after each of ``keys`` in its session (them included)."""
        ...

    async def speakers(self, scope: Scope) -> list[str]:
        """The distinct speakers of the user's messages."""
        ...

    async def sessions(self, scope: Scope, limit: int, offset: int) -> list[SessionInfo]:
        """The user's sessions, the most recent first."""
        ...

    async def list_messages(self, scope: Scope, session_id: str | None, limit: int, offset: int) -> list[Message]:
        """The user's messages (of one session, or all), oldest first."""
        ...

    async def forget(self, scope: Scope, session_id: str | None = None, message_id: str | None = None) -> Forgotten:
        """Delete one message, one session, or (neither given) the user's whole memory. Facts stated only by
        deleted messages go with them (and the facts they had closed hold again); the others keep their
        remaining sources."""
        ...


async def open_graph_store(url: str) -> GraphStore:
    """Open the graph store in the database at ``url`` (``sqlite:///…`` or ``postgresql://…``), whose tables the
    job store's migrations made (``ingestd.store.open_store`` migrates): one read checks that they are there."""
    store: GraphStore
    if url.startswith("sqlite"):
        from ingestd.pipelines.memory.graph_sqlite import SqliteGraphStore

        store = SqliteGraphStore(url)
    elif url.startswith(("postgresql", "postgres")):
        from ingestd.pipelines.memory.graph_postgres import PostgresGraphStore

        store = await PostgresGraphStore.connect(url)
    else:
        raise errors.InvalidInput(f"unsupported database URL for the memory graph: {url.split(':', 1)[0]}")
    try:
        await store.check_tables()
    except BaseException:
        await store.close()
        raise
    return store


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    messages: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Forgotten:
    """What a deletion removed: messages, facts (those only deleted messages stated), and facts reopened (a
    deleted fact had closed them)."""

    messages: int
    facts: int
    reopened: int
