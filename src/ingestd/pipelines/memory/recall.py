"""What the memory read API answers: facts, messages and entities as JSON, and the block for an LLM prompt.

Pure functions over the graph's data classes (no I/O), shared by the HTTP API and anyone embedding ingestd.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ingestd.models import JSON
from ingestd.pipelines.memory.block import build
from ingestd.pipelines.memory.dates import day_label
from ingestd.pipelines.memory.graph import Entity, Fact, Forgotten, Message, SessionInfo
from ingestd.pipelines.memory.retrieve import Recall

CONTEXT_WORDS = 400  # the default size of a context block


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def fact_json(fact: Fact, score: float | None = None) -> JSON:
    """One fact as the API shows it: the triple, its sentence, when it held, where it came from."""
    body: JSON = {
        "id": fact.id,
        "subject": {"id": fact.subject_id, "name": fact.subject},
        "predicate": fact.predicate,
        "object": {"id": fact.object_id, "name": fact.object},
        "sentence": fact.sentence,
        "valid_at": _iso(fact.valid_at),
        "invalid_at": _iso(fact.invalid_at),
        "current": fact.current,
        "created_at": _iso(fact.created_at),
        "episode_id": fact.episode_id,
        "job_id": fact.job_id,
        "message_ids": list(fact.message_ids),
    }
    if score is not None:
        body["score"] = round(score, 6)
    return body


def entity_json(entity: Entity, score: float | None = None) -> JSON:
    body: JSON = {
        "id": entity.id,
        "name": entity.name,
        "type": entity.type,
        "summary": entity.summary,
        "created_at": _iso(entity.created_at),
        "updated_at": _iso(entity.updated_at),
    }
    if entity.aliases:
        body["aliases"] = list(entity.aliases)
    if score is not None:
        body["score"] = round(score, 6)
    return body


def entity_with_facts_json(user_id: str, entity: Entity, facts: Sequence[Fact]) -> JSON:
    """The ``/entities/{id}`` answer: the entity, its facts over time (oldest first) and which still hold."""
    return {
        "user_id": user_id,
        "entity": entity_json(entity),
        "facts": [fact_json(f) for f in facts],
        "current_facts": sum(1 for f in facts if f.current),
    }


def message_json(message: Message, score: float | None = None, text: str | None = None) -> JSON:
    """One message as the API shows it: who said it, when, in which session, and the dates it mentions."""
    body: JSON = {
        "id": message.id,
        "session_id": message.session_id,
        "index": message.index,
        "speaker": message.speaker,
        "role": message.role,
        "timestamp": _iso(message.at),
        "date": day_label(message.at),
        "content": message.content,
        "dates": list(message.dates),
        "message_ids": [message.id],
    }
    if text is not None:
        body["shown"] = text
    if score is not None:
        body["score"] = round(score, 6)
    return body


def recall_json(user_id: str, query: str, found: Recall, vector_search: bool, limit: int) -> JSON:
    """The ``/search`` answer: facts (current first), messages (best first), and the entities the query names."""
    return {
        "user_id": user_id,
        "query": query,
        "vector_search": vector_search,
        "facts": [fact_json(h.fact, h.score) for h in found.facts[:limit]],
        "messages": [message_json(h.message, h.score) for h in found.messages[:limit]],
        "entities": [entity_json(h.entity, h.score) for h in found.entities],
    }


def context_json(user_id: str, query: str, found: Recall, max_words: int = CONTEXT_WORDS) -> JSON:
    """The ``/context`` answer: the block, and the messages, facts and entities it shows (and only those)."""
    block = build(user_id, query, found, max_words)
    message_ids = [m.id for m, _ in block.messages] + [i for f in block.facts for i in f.message_ids]
    names = {f.subject_id for f in block.facts} | {f.object_id for f in block.facts if f.object_id}
    return {
        "user_id": user_id,
        "query": query,
        "context": block.text,
        "words": block.words,
        "message_ids": list(dict.fromkeys(message_ids)),
        "fact_ids": [f.id for f in block.facts],
        "entity_ids": [h.entity.id for h in found.entities if h.entity.id in names],
        "facts": [fact_json(f) for f in block.facts],
        "messages": [message_json(m, text=t) for m, t in block.messages],
    }


def session_json(session: SessionInfo) -> JSON:
    return {
        "session_id": session.session_id,
        "messages": session.messages,
        "first_at": _iso(session.first_at),
        "last_at": _iso(session.last_at),
    }


def forgotten_json(forgotten: Forgotten) -> JSON:
    return {"messages": forgotten.messages, "facts": forgotten.facts, "facts_reopened": forgotten.reopened}
