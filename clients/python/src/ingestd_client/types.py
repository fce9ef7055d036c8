"""What the server answers, typed: jobs and events as frozen dataclasses, memory answers as ``TypedDict``s (the
JSON itself, so a field the server adds later is there too)."""

# No `from __future__ import annotations`: TypedDict reads NotRequired from real annotations (Python 3.11).
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

TERMINAL = frozenset({"succeeded", "partial", "failed", "canceled"})


@dataclass(frozen=True)
class RemoteJob:
    """A job as the server described it (the full JSON is in ``data``)."""

    id: str
    status: str
    pipeline: str
    progress: dict[str, Any]
    error: dict[str, Any] | None
    usage: dict[str, Any]
    links: dict[str, str]
    data: dict[str, Any]
    retry_after: float | None = None  # the server's hint, from the answer's Retry-After

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: dict[str, Any], retry_after: float | None = None) -> "RemoteJob":
        return cls(
            id=data["id"],
            status=data["status"],
            pipeline=data["pipeline"],
            progress=data.get("progress") or {},
            error=data.get("error"),
            usage=data.get("usage") or {},
            links=data.get("links") or {},
            data=data,
            retry_after=retry_after,
        )


@dataclass(frozen=True)
class ClientEvent:
    """One event of a job: ``seq`` (1, 2, 3...), ``type`` (``job.progress``...), ``data``."""

    seq: int
    type: str
    data: dict[str, Any]
    at: str = ""


# --- memory (GET /v1/memory/{user_id}/search, /context; DELETE /v1/memory/{user_id}...) ----------------------
class FactEnd(TypedDict):
    """A fact's subject or object: an entity id and its name (``id`` None for a plain value)."""

    id: str | None
    name: str | None


class Fact(TypedDict):
    """A fact: a (subject, predicate, object) triple, its sentence, when it held and where it came from."""

    id: str
    subject: FactEnd
    predicate: str
    object: FactEnd
    sentence: str
    valid_at: str | None
    invalid_at: str | None
    current: bool
    created_at: str | None
    episode_id: str | None
    job_id: str | None
    message_ids: list[str]
    score: NotRequired[float]


class Message(TypedDict):
    """A message: who said it, when, in which session, and the dates it mentions."""

    id: str
    session_id: str
    index: int
    speaker: str | None
    role: str
    timestamp: str | None
    date: str | None
    content: str
    dates: list[str]
    message_ids: list[str]
    shown: NotRequired[str]  # in a context block: the part of the message the block shows
    score: NotRequired[float]


class Entity(TypedDict):
    """An entity (a person, place, organisation...) of a user's memory."""

    id: str
    name: str
    type: str | None
    summary: str | None
    created_at: str | None
    updated_at: str | None
    aliases: NotRequired[list[str]]
    score: NotRequired[float]


class MemorySearch(TypedDict):
    """``search``: facts (current first), messages (best first), and the entities the query names."""

    user_id: str
    query: str
    vector_search: bool
    facts: list[Fact]
    messages: list[Message]
    entities: list[Entity]


class MemoryContext(TypedDict):
    """``context``: a block of text for an LLM prompt, and the messages, facts and entities it shows."""

    user_id: str
    query: str
    context: str
    words: int
    message_ids: list[str]
    fact_ids: list[str]
    entity_ids: list[str]
    facts: list[Fact]
    messages: list[Message]


class Forgotten(TypedDict):
    """What a delete removed: messages, facts, and facts that hold again (the message that ended them is gone)."""

    messages: int
    facts: int
    facts_reopened: int


class MemoryDeletion(TypedDict):
    """``delete``: the user, the session or message deleted (when one was named), and what went."""

    user_id: str
    session_id: NotRequired[str]
    message_id: NotRequired[str]
    deleted: Forgotten


class BatchJob(TypedDict):
    """A job a batch item made (or found, for a replayed idempotency key)."""

    id: str
    status: str
    links: dict[str, str]


class BatchEntry(TypedDict):
    """One item of ``submit_batch``: its ``job`` (and whether it was ``replayed``), or its RFC 9457 ``problem``."""

    index: int
    job: NotRequired[BatchJob]
    replayed: NotRequired[bool]
    problem: NotRequired[dict[str, Any]]


class BatchResult(TypedDict):
    """``submit_batch``: how many items made (or found) a job, how many were refused, and each item in order."""

    accepted: int
    rejected: int
    jobs: list[BatchEntry]
