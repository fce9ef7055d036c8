"""Recall for a question: messages and facts, found by full text, vectors and the graph, fused and ranked.

Four rankings of messages are fused by reciprocal rank: full text (bm25 / ts_rank) over the words of the
question that are not a speaker's name, vector similarity, the source messages of the facts that match, and the
source messages of the facts about the entities the question names (graph expansion: "the city Emma moved to"
reaches the message about the move through the entity). A question naming a speaker ("What did Melanie
paint?") prefers that speaker's own messages. A message next to good hits gains a share of their score.
"""

from __future__ import annotations

from dataclasses import dataclass

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
TEXT_WEIGHT = 1.0  # weight of the full-text ranking against the vector one
GRAPH_WEIGHT = 0.25  # weight of each fact-derived ranking
MESSAGE_CANDIDATES = 40
# Shares of a neighbour's fused score a message gains, by the neighbour's offset: an answer follows its question.
NEIGHBOUR_SHARES = {-2: 0.1, -1: 0.3, 1: 0.1}
ENTITY_FACTS = 30  # facts read per entity the question names


@dataclass(frozen=True)
class Recall:
    messages: list[MessageHit]  # best first
    facts: list[SearchHit]
    entities: list[EntityHit]
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
    graph_ranked = [key_of[i] for i in by_fact if i in key_of], [key_of[i] for i in _ids(expanded) if i in key_of]
    scores = _fuse(text, dense, *graph_ranked)
    top = sorted(scores, key=lambda k: -scores[k])[:MESSAGE_CANDIDATES]
    around = await graph.neighbours(scope, top, max(abs(d) for d in NEIGHBOUR_SHARES)) if top else []
    hits = [MessageHit(m, _boosted(s, m, named)) for m, s in _smoothed(around, scores).items()]
    hits.sort(key=lambda h: (-h.score, -h.message.at.timestamp()))
    return Recall(hits[:MESSAGE_CANDIDATES], found.facts, found.entities, tuple(named))


def _smoothed(messages: list[Message], scores: dict[str, float]) -> dict[Message, float]:
    """Each message's score plus shares of its neighbours' in the session: an answer often sits next to the
    turn that matches the question (the question asked, then its answer), in words of its own."""
    at = {(m.session_id, m.index): m for m in messages}
    out: dict[Message, float] = {}
    for m in messages:
        near = [(at.get((m.session_id, m.index + d)), share) for d, share in NEIGHBOUR_SHARES.items()]
        out[m] = scores.get(m.key, 0.0) + sum(share * scores.get(n.key, 0.0) for n, share in near if n)
    return {m: s for m, s in out.items() if s > 0}


def _ids(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _fuse(text: list[str], dense: list[str], by_fact: list[str], expanded: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking, weight in ((text, TEXT_WEIGHT), (dense, 1.0), (by_fact, GRAPH_WEIGHT), (expanded, GRAPH_WEIGHT)):
        for key, score in hybrid.fuse(ranking).items():
            scores[key] = scores.get(key, 0.0) + weight * score
    return scores


def _boosted(score: float, message: Message, named: list[str]) -> float:
    return score * SPEAKER_BOOST if message.speaker in named else score
