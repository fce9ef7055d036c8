"""What the memory read API answers: facts and entities as JSON, and a compact block for an LLM prompt.

Pure functions over the graph's data classes (no I/O), shared by the HTTP API and anyone embedding ingestd.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ingestd.models import JSON
from ingestd.pipelines.memory.graph import Entity, EntityHit, Fact, SearchHit, SearchResult

CONTEXT_FACTS = 12  # facts in a context block by default: enough to answer, short enough to paste
CONTEXT_PAST_FACTS = 4  # of which at most this many are history ("used to live in Lisbon")


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


def search_json(user_id: str, query: str, result: SearchResult, vector_search: bool) -> JSON:
    """The ``/search`` answer: facts (current first) and the entities the query names or resembles."""
    return {
        "user_id": user_id,
        "query": query,
        "vector_search": vector_search,
        "facts": [fact_json(h.fact, h.score) for h in result.facts],
        "entities": [entity_json(h.entity, h.score) for h in result.entities],
    }


def entity_with_facts_json(user_id: str, entity: Entity, facts: Sequence[Fact]) -> JSON:
    """The ``/entities/{id}`` answer: the entity, its facts over time (oldest first) and which still hold."""
    return {
        "user_id": user_id,
        "entity": entity_json(entity),
        "facts": [fact_json(f) for f in facts],
        "current_facts": sum(1 for f in facts if f.current),
    }


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "?"


def _fact_line(fact: Fact) -> str:
    # The triple, not the source sentence: a sentence says "I" and "she", which mean nothing out of the chat.
    statement = f"{fact.subject} {fact.predicate.replace('_', ' ')} {fact.object}"
    if fact.current:
        return f"- {statement} (since {_day(fact.valid_at)})" if fact.valid_at else f"- {statement}"
    return f"- {statement} ({_day(fact.valid_at)} to {_day(fact.invalid_at)})"


def _lines(facts: Sequence[Fact]) -> list[str]:
    return list(dict.fromkeys(_fact_line(f) for f in facts))  # one line per distinct statement, in rank order


def _entity_line(hit: EntityHit) -> str:
    entity = hit.entity
    summary = f": {entity.summary.strip()}" if entity.summary.strip() else ""
    return f"- {entity.name} ({entity.type}){summary}"


def render_context(
    user_id: str, query: str, hits: Sequence[SearchHit], entities: Sequence[EntityHit], as_of: datetime
) -> str:
    """A memory block to paste into a prompt: what holds now, a little history, and who is who.

    Current facts come first because they answer "what is true"; past facts are kept (fewer) because a
    contradiction ("moved from Lisbon to Porto") is often what the assistant needs to mention.
    """
    current = [h.fact for h in hits if h.fact.current]
    past = [h.fact for h in hits if not h.fact.current][:CONTEXT_PAST_FACTS]
    lines = [f'<memory user="{user_id}" as_of="{as_of.isoformat(timespec="seconds")}" query="{_quote(query)}">']
    if not current and not past and not entities:
        lines.append("Nothing relevant is remembered.")
    if current:
        lines += ["Facts that hold now:", *_lines(current)]
    if past:
        lines += ["No longer true:", *_lines(past)]
    if entities:
        lines += ["Entities:", *(_entity_line(e) for e in entities)]
    lines.append("</memory>")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")[:200]


def context_json(user_id: str, query: str, result: SearchResult, as_of: datetime, limit: int = CONTEXT_FACTS) -> JSON:
    """The ``/context`` answer: the block and the ids of the facts and entities it cites."""
    hits = result.facts[:limit]
    shown = [h for h in hits if h.fact.current] + [h for h in hits if not h.fact.current][:CONTEXT_PAST_FACTS]
    return {
        "user_id": user_id,
        "query": query,
        "context": render_context(user_id, query, shown, result.entities, as_of),
        "fact_ids": [h.fact.id for h in shown],
        "entity_ids": [h.entity.id for h in result.entities],
    }
