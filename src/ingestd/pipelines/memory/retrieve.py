"""Recall for a question: messages and facts, found by full text, vectors and the graph, fused and ranked.

Four rankings of messages are fused by reciprocal rank: full text (bm25 / ts_rank) over the words of the
question that are not a speaker's name, vector similarity, the source messages of the facts that match, and the
source messages of the facts about the entities the question names (graph expansion: "the city Emma moved to"
reaches the message about the move through the entity). A question naming a speaker ("What did Melanie
paint?") prefers that speaker's own messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory.graph import (
    EntityHit,
    GraphStore,
    Message,
    MessageHit,
    Scope,
    SearchHit,
)
from ingestd.pipelines.memory.names import fold

SPEAKER_BOOST = 1.5  # score factor of a message said by a speaker the question names
GRAPH_WEIGHT = 0.5  # weight of the fact-derived rankings against full text and vectors
MESSAGE_CANDIDATES = 40
ENTITY_FACTS = 30  # facts read per entity the question names


@dataclass(frozen=True)
class Recall:
    messages: list[MessageHit]  # best first
    facts: list[SearchHit]
    entities: list[EntityHit]
    replies: dict[str, Message] = field(default_factory=dict)  # message key -> the message answering it
    speakers: tuple[str, ...] = ()  # the speakers the question names


def named_speakers(query: str, speakers: list[str]) -> list[str]:
    """The speakers whose name (or first name) the query contains."""
    words = set(fold(query).split())
    return [s for s in speakers if fold(s) and (set(fold(s).split()) & words) and s.lower() not in _ROLES]


_ROLES = {"user", "assistant", "system"}


def content_terms(query: str, named: list[str]) -> list[str]:
    """The query's search terms without the named speakers' names (every message of theirs has them anyway)."""
    terms = hybrid.query_terms(query, limit=16)
    names = {w for s in named for w in fold(s).split()}
    names |= {f"{n}s" for n in names}  # "Melanie's" folds to "melanie s" / "melanies"
    rest = [t for t in terms if t not in names]
    return rest or terms


async def recall(
    graph: GraphStore, scope: Scope, query: str, vector: list[float] | None, fact_limit: int = 10
) -> Recall:
    """The messages, facts and entities that answer ``query`` best."""
    named = named_speakers(query, await graph.speakers(scope))
    text, dense = await graph.message_ranking(scope, content_terms(query, named), vector)
    found = await graph.search(scope, query, vector, fact_limit)
    by_fact = _ids([i for h in found.facts for i in h.fact.message_ids])
    expanded: list[str] = []
    for hit in found.entities[:3]:
        if hit.entity.name not in named:
            facts = (await graph.entity_facts(scope, hit.entity.id))[-ENTITY_FACTS:]
            expanded += [i for f in reversed(facts) for i in f.message_ids]
    linked = await graph.messages_with_ids(scope, _ids(by_fact + expanded)[:MESSAGE_CANDIDATES])
    key_of = {m.id: m.key for m in linked}
    scores = _fuse(
        text, dense, [key_of[i] for i in by_fact if i in key_of], [key_of[i] for i in _ids(expanded) if i in key_of]
    )
    top = sorted(scores, key=lambda k: -scores[k])[: MESSAGE_CANDIDATES * 2]
    known = {m.key: m for m in linked}
    missing = [k for k in top if k not in known]
    known |= {m.key: m for m in await graph.get_messages(scope, missing)} if missing else {}
    hits = [MessageHit(known[k], _boosted(scores[k], known[k], named)) for k in top if k in known]
    hits.sort(key=lambda h: (-h.score, -h.message.at.timestamp()))
    hits = hits[:MESSAGE_CANDIDATES]
    questions = [h.message.key for h in hits[:8] if h.message.content.rstrip().endswith("?")]
    replies = await graph.next_messages(scope, questions) if questions else {}
    return Recall(hits, found.facts, found.entities, replies, tuple(named))


def _ids(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _fuse(text: list[str], dense: list[str], by_fact: list[str], expanded: list[str]) -> dict[str, float]:
    scores = hybrid.fuse(text, dense)
    for key, score in hybrid.fuse(by_fact, expanded).items():
        scores[key] = scores.get(key, 0.0) + GRAPH_WEIGHT * score
    return scores


def _boosted(score: float, message: Message, named: list[str]) -> float:
    return score * SPEAKER_BOOST if message.speaker in named else score
