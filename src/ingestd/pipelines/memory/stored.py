"""What the two graph backends read and write alike, written once: stored rows as the graph's data, the
embedding rows an apply writes, and what a deletion leaves of the facts.

A row is an asyncpg ``Record`` or a ``sqlite3.Row``, read by column name; the backends differ only in how a
stored timestamp reads back (PostgreSQL gives a ``datetime``, SQLite the ISO text it was written as), which each
passes as ``parse``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory.graph import Entity, Fact, GraphChanges, KnownEntity, Message, Scope

Parse = Callable[[Any], datetime]  # a stored (not NULL) timestamp as a datetime

# Every table holding a user's rows (by tenant, user_id): what forgetting a user's whole memory empties.
USER_TABLES = ("mem_episodes", "mem_entities", "mem_aliases", "mem_facts", "mem_embeddings", "mem_messages",
               "mem_speakers", "mem_users")  # fmt: skip

# A speaker none of whose messages is left (after a message or a session is forgotten) is forgotten too, or their
# name would still be read as one of the user's speakers; ``{}`` are the dialect's two placeholders.
SPEAKERS_WITHOUT_MESSAGES = """DELETE FROM mem_speakers WHERE tenant={} AND user_id={} AND NOT EXISTS (
    SELECT 1 FROM mem_messages m
    WHERE m.tenant = mem_speakers.tenant AND m.user_id = mem_speakers.user_id AND m.speaker = mem_speakers.speaker)"""

# The SQL (the same in both dialects) reading what ``fact``, ``entity`` and ``message`` below take: a fact with its
# subject's name and its object's (an entity's name, else the plain value).
FACT_FROM = "FROM mem_facts f JOIN mem_entities s ON s.id = f.subject_id LEFT JOIN mem_entities o ON o.id = f.object_id"
FACT_COLUMNS = """f.id, f.subject_id, s.name AS subject, f.predicate, f.object_id,
    COALESCE(o.name, f.object) AS object, f.sentence, f.valid_at, f.invalid_at, f.created_at, f.episode_id, f.job_id,
    f.message_ids"""
FACT_SELECT = f"SELECT {FACT_COLUMNS} {FACT_FROM}"
ENTITY_SELECT = "SELECT id, name, type, summary, created_at, updated_at FROM mem_entities"
MESSAGE_SELECT = "SELECT seq, id, session_id, idx, role, speaker, content, at, utc_offset, dates FROM mem_messages"


class Row(Protocol):
    """A result row read by column name (asyncpg ``Record``, ``sqlite3.Row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


def as_is(value: datetime) -> datetime:
    """The ``parse`` of PostgreSQL: asyncpg reads a ``timestamptz`` as a ``datetime`` already."""
    return value


def _optional(parse: Parse, value: Any) -> datetime | None:
    return parse(value) if value is not None else None


def fact(row: Row, parse: Parse) -> Fact:
    return Fact(
        id=row["id"],
        subject_id=row["subject_id"],
        subject=row["subject"],
        predicate=row["predicate"],
        object_id=row["object_id"],
        object=row["object"],
        sentence=row["sentence"],
        valid_at=_optional(parse, row["valid_at"]),
        invalid_at=_optional(parse, row["invalid_at"]),
        created_at=parse(row["created_at"]),
        episode_id=row["episode_id"],
        job_id=row["job_id"],
        message_ids=tuple(json.loads(row["message_ids"] or "[]")),
    )


def entity(row: Row, parse: Parse, aliases: Sequence[str] = ()) -> Entity:
    created_at, updated_at = parse(row["created_at"]), parse(row["updated_at"])
    return Entity(row["id"], row["name"], row["type"], row["summary"], tuple(aliases), created_at, updated_at)


def utc_offset(at: datetime) -> int | None:
    """The minutes east of UTC of a message's time as the client sent it (None: UTC), kept in ``utc_offset``."""
    offset = at.utcoffset()
    return None if offset is None or not offset else int(offset.total_seconds() // 60)


def local_time(at: datetime, offset: int | None) -> datetime:
    """A stored time read back at the offset it was said at: its day is the speaker's day, not UTC's."""
    return at.astimezone(timezone(timedelta(minutes=offset))) if offset else at


def message(row: Row, parse: Parse) -> Message:
    return Message(
        key=str(row["seq"]),
        id=row["id"],
        session_id=row["session_id"],
        index=int(row["idx"]),
        role=row["role"],
        speaker=row["speaker"],
        content=row["content"],
        at=local_time(parse(row["at"]), row["utc_offset"]),
        dates=tuple(json.loads(row["dates"])),
    )


def known_entities(aliases: Iterable[tuple[str, str]], rows: Iterable[Row]) -> list[KnownEntity]:
    """The user's entities (rows of id, name, type, vector) with their ``(alias, entity_id)`` spellings."""
    spellings: dict[str, list[str]] = {}
    for alias, entity_id in aliases:
        spellings.setdefault(entity_id, []).append(alias)
    return [
        KnownEntity(
            r["id"],
            r["name"],
            r["type"],
            tuple(spellings.get(r["id"], ())),
            hybrid.vector_from_bytes(r["vector"]) if r["vector"] else None,
        )
        for r in rows
    ]


def embeddings(scope: Scope, ch: GraphChanges) -> list[tuple[str, str, str, str, str, bytes]]:
    """The ``mem_embeddings`` rows (kind, owner, tenant, user, model, vector) of the job's entities and facts."""
    vectors = [("entity", e.id, e.embedding) for e in ch.entities] + [("fact", f.id, f.embedding) for f in ch.facts]
    return [
        (kind, owner, scope.tenant, scope.user_id, ch.embedding_model, hybrid.vector_to_bytes(v))
        for kind, owner, v in vectors
        if hybrid.has_vector(v)
    ]


def sources_left(facts: Iterable[tuple[str, str]], deleted: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Given facts as (id, ``message_ids`` JSON) and the client ids of deleted messages: the facts that go (every
    message stating them is deleted), and the remaining message ids of those that lose only some."""
    gone: list[str] = []
    fewer: dict[str, list[str]] = {}
    for fact_id, sources in facts:
        before = json.loads(sources)
        kept = [i for i in before if i not in deleted]
        if not kept:
            gone.append(fact_id)
        elif len(kept) < len(before):
            fewer[fact_id] = kept
    return gone, fewer
