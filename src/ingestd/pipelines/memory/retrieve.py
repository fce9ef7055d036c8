"""Recall for a question: messages and facts, found by full text, vectors and the graph, fused and ranked.

Four rankings of messages are fused by reciprocal rank: full text (bm25 / ts_rank) over the words of the
question that are not a speaker's name, vector similarity, the source messages of the facts that match, and the
source messages of the facts about the entities the question names (graph expansion: "the city Emma moved to"
reaches the message about the move through the entity). A question naming a speaker ("What did Melanie
paint?") prefers that speaker's own messages. A message next to good hits gains a share of their score (a
speaker's turn before or after theirs across the other's reply too); a message of few words weighs less alone.
A second hop searches the names the best message mentions and the question does not ("What trouble has Meera's
kitten caused?" finds "I've called her Mochi", then every message about Mochi).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

from ingestd.pipelines.memory import search as hybrid
from ingestd.pipelines.memory.graph import (
    EntityHit,
    Fact,
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
# Reciprocal rank fusion constant for messages: lower than the usual 60, so that a message one ranking puts near
# its top stands out from the long flat tail every ranking gives (a dense ranking scores every message).
MESSAGE_RRF_K = 20.0
# Shares of a neighbour's fused score a message gains, by the neighbour's offset: an answer follows its question.
# The turn two after shares only when the same speaker said it (``_share``).
NEIGHBOUR_SHARES = {-2: 0.1, -1: 0.3, 1: 0.1, 2: 0.0}
# The share of the turn two before or after when the same speaker said it: their previous or next turn, across
# the other's short reply ("I met someone there." / "Ooh. Someone?" / "His name is Jonah, he's a park ranger…").
SAME_SPEAKER_SHARE = 0.3
# A message's own score times min(1, SHORT_PRIOR + SHORT_STEP x its content words): see ``_prior``.
SHORT_PRIOR, SHORT_STEP, SHORT_WORDS = 0.4, 0.1, 6
# The share of the turn right before when the other speaker asked a question there: the reply answers it, in words
# of its own ("How's Miso?" / "Miso is Miso. She sleeps on my running shoes…").
ANSWER_SHARE = 0.6
ENTITY_FACTS = 30  # facts read per entity the question names
# The second hop: the names the best few messages mention that the question does not ("I told the Great Dane
# story." -> the turn about the Great Dane), searched in full text and fused at this weight.
HOP_SOURCES, HOP_TERMS, HOP_WEIGHT = 1, 3, 0.5
# A question for a time asks about one event: a second hop there only brings other events' messages.
ASKS_WHEN = re.compile(r"\b(?:when|what (?:year|month|day|date|time)|which (?:year|month|day)|how long ago)\b", re.I)
_NAME = re.compile(r"(?<=[\w,;:)\"'] )[A-Z][a-z]+(?:[-'][A-Za-z]+)?")
_NOT_NAMES = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july august "
    "september october november december mum mom dad im ive ill id".split()
)
_POSSESSIVE = re.compile(r"'?s$|'$")  # "Omar's", "Omar\u2019s" (folded "omars"), "Marcus'"


@dataclass(frozen=True)
class Filters:
    """What a search may return: ``as_of`` (facts that held then, messages said by then), ``since``/``until``
    (messages said, facts starting to hold, in that window), ``speaker`` (messages by, facts about)."""

    as_of: datetime | None = None
    since: datetime | None = None
    until: datetime | None = None
    speaker: str | None = None

    def keeps_message(self, message: Message) -> bool:
        end = min((t for t in (self.as_of, self.until) if t is not None), default=None)
        if (self.since and message.at < self.since) or (end and message.at > end):
            return False
        return self.speaker is None or _same_person(message.speaker, self.speaker)

    def keeps_fact(self, fact: Fact) -> bool:
        if self.as_of and not (
            (fact.valid_at is None or fact.valid_at <= self.as_of)
            and (fact.invalid_at is None or fact.invalid_at > self.as_of)
        ):
            return False
        if (self.since or self.until) and fact.valid_at is None:
            return False
        if (self.since and fact.valid_at and fact.valid_at < self.since) or (
            self.until and fact.valid_at and fact.valid_at > self.until
        ):
            return False
        return self.speaker is None or _same_person(fact.subject, self.speaker)


def _same_person(name: str, wanted: str) -> bool:
    """ "Maya Okafor" is "Maya" and "maya okafor"."""
    a, b = fold(name).split(), fold(wanted).split()
    return bool(a and b) and (a == b or a[: len(b)] == b)


NO_FILTERS = Filters()


@dataclass(frozen=True)
class Recall:
    messages: list[MessageHit]  # best first
    facts: list[SearchHit]
    entities: list[EntityHit]
    speakers: tuple[str, ...] = ()  # the speakers the question names


def named_speakers(query: str, speakers: list[str]) -> list[str]:
    """The speakers whose name (or first name) the query contains."""
    words = set(fold(query).split())
    words |= {_POSSESSIVE.sub("", w) for w in words}  # "Dev\u2019s" folds to "devs", "Marcus'" to "marcus'"
    return [s for s in speakers if fold(s) and (set(fold(s).split()) & words) and s.lower() not in _ROLES]


_ROLES = {"user", "assistant", "system"}


# Words of the question's form, not of its subject ("Would Melanie likely enjoy…", "What kind of car…"): a rare
# one ("likely") would otherwise weigh like a topic in full-text ranking.
QUESTION_WORDS = frozenset(
    "would could should might likely probably kind sort type ever get got much many consider considered think".split()
)


def vector_text(query: str, named: list[str]) -> str:
    """The query to embed: without the named speakers' names. Messages are embedded as "<speaker>: <content>",
    so a name in the query draws every message of that speaker, the emptiest first ("Omar: Night Tal." is
    nearer to "What pets does Omar have?" than the turn about his cat); the speaker is weighed apart
    (``SPEAKER_BOOST``)."""
    names = {w for s in named for w in fold(s).split()}
    if not names:
        return query
    rest = " ".join(w for w in query.split() if not ({fold(w), _POSSESSIVE.sub("", fold(w))} & names))
    return rest if hybrid.query_terms(rest) else query


def content_terms(query: str, named: list[str]) -> list[str]:
    """The query's search terms without the named speakers' names (every message of theirs has them anyway) nor
    the words of the question's form."""
    terms = [t for t in hybrid.query_terms(query, limit=24) if t not in QUESTION_WORDS][:16]
    names = {w for s in named for w in fold(s).split()}
    names |= {f"{n}s" for n in names}  # "Melanie's" folds to "melanie s" / "melanies"
    rest = [t for t in terms if t not in names]
    return rest or terms


async def recall(
    graph: GraphStore,
    scope: Scope,
    query: str,
    vector: list[float] | None,
    fact_limit: int = 10,
    filters: Filters = NO_FILTERS,
    named: list[str] | None = None,
    speakers: list[str] | None = None,
) -> Recall:
    """The messages, facts and entities that answer ``query`` best, among those ``filters`` keep (applied to
    the candidates: a narrow filter may leave fewer than exist). ``named``: the speakers the query names, when
    the caller has them (``named_speakers``; ``vector`` should then embed ``vector_text``); ``speakers``: the
    user's speakers (``graph.speakers``), when the caller has read them."""

    async def rank_messages() -> tuple[list[str], list[str], tuple[list[str], list[str]]]:
        everyone = speakers if speakers is not None else await graph.speakers(scope)
        who = named if named is not None else named_speakers(query, everyone)
        return everyone, who, await graph.message_ranking(scope, content_terms(query, who), vector)

    # Concurrent where the store has several connections (PostgreSQL's pool); SQLite runs them one after another.
    (everyone, named, (text, dense)), found = await asyncio.gather(
        rank_messages(), graph.search(scope, query, vector, fact_limit if filters == NO_FILTERS else hybrid.CANDIDATES)
    )
    facts = [h for h in found.facts if filters.keeps_fact(h.fact)][:fact_limit]
    by_fact, expanded = await _graph_rankings(graph, scope, facts, found.entities, named)
    scores = _fuse(text, dense, by_fact, expanded)
    near = _ids(text + dense)
    hop = [] if ASKS_WHEN.search(query) else await _second_hop(graph, scope, query, scores, everyone, near)
    for rank, key in enumerate(hop):
        scores[key] = scores.get(key, 0.0) + HOP_WEIGHT / (MESSAGE_RRF_K + rank + 1)
    top = sorted(scores, key=lambda k: -scores[k])[:MESSAGE_CANDIDATES]
    around = await graph.neighbours(scope, top, max(abs(d) for d in NEIGHBOUR_SHARES)) if top else []
    smoothed = _smoothed(around, scores).items()
    hits = [MessageHit(m, _boosted(s, m, named)) for m, s in smoothed if filters.keeps_message(m)]
    hits.sort(key=lambda h: (-h.score, -h.message.at.timestamp()))
    return Recall(hits[:MESSAGE_CANDIDATES], facts, found.entities, tuple(named))


async def _graph_rankings(
    graph: GraphStore, scope: Scope, facts: list[SearchHit], entities: list[EntityHit], named: list[str]
) -> tuple[list[str], list[str]]:
    """Message keys ranked through the graph: the sources of the facts that match, and those of the latest
    facts about the entities the query names (not the speakers: every message of theirs is about them)."""
    by_fact = _ids([i for h in facts for i in h.fact.message_ids])
    # Concurrent where the store has several connections (PostgreSQL: one wait instead of three).
    abouts = await asyncio.gather(
        *(graph.entity_facts(scope, hit.entity.id) for hit in entities[:3] if hit.entity.name not in named)
    )
    expanded = [i for about in abouts for f in reversed(about[-ENTITY_FACTS:]) for i in f.message_ids]
    linked = await graph.messages_with_ids(scope, _ids(by_fact + expanded)[:MESSAGE_CANDIDATES])
    key_of = {m.id: m.key for m in linked}
    return [key_of[i] for i in by_fact if i in key_of], [key_of[i] for i in _ids(expanded) if i in key_of]


async def _second_hop(
    graph: GraphStore, scope: Scope, query: str, scores: dict[str, float], speakers: list[str], near: list[str]
) -> list[str]:
    """Those of ``near`` (the messages full text or vectors found) ranked by the names the best messages mention
    and the question does not (a person, pet, place or thing named in one session and spoken of in another)."""
    best = sorted(scores, key=lambda k: -scores[k])[:HOP_SOURCES]
    messages = sorted(await graph.get_messages(scope, best), key=lambda m: -scores.get(m.key, 0.0))
    terms = hop_terms([m.content for m in messages], query, speakers)
    return await graph.text_ranking_among(scope, terms, near) if terms else []


def hop_terms(contents: list[str], query: str, speakers: list[str]) -> list[str]:
    """The search terms of the names ``contents`` mention (a capitalised word inside a sentence: "Mochi",
    "Georgian Bay", "Sato-san") that are neither the question's words, a speaker's name nor a day or month."""
    asked = set(hybrid.query_terms(query, limit=64)) | {w for s in speakers for w in fold(s).split()} | _NOT_NAMES
    terms: list[str] = []
    for content in contents:
        for name in _NAME.findall(content):
            terms += [t for t in hybrid.query_terms(name) if t not in asked and t not in terms]
    return terms[:HOP_TERMS]


def _smoothed(messages: list[Message], scores: dict[str, float]) -> dict[Message, float]:
    """Each message's score plus shares of its neighbours' in the session: an answer often sits next to the
    turn that matches the question (the question asked, then its answer; the speaker's previous turn), in words
    of its own."""
    at = {(m.session_id, m.index): m for m in messages}
    out: dict[Message, float] = {}
    for m in messages:
        shared = 0.0
        for d, share in NEIGHBOUR_SHARES.items():  # most neighbours have no score of their own
            n = at.get((m.session_id, m.index + d))
            if n is not None and (neighbour := scores.get(n.key, 0.0)):
                shared += _share(m, n, share) * neighbour
        own = scores.get(m.key, 0.0)
        if (total := (own * _prior(m) if own else 0.0) + shared) > 0:
            out[m] = total
    return out


def _prior(message: Message) -> float:
    """Under 1 for a message of few content words ("That's a good dog.", "Poor Sloane."): a short text lies near
    many questions in embedding space and says little; it still passes its own score on to its neighbours."""
    return min(1.0, SHORT_PRIOR + SHORT_STEP * len(hybrid.query_terms(message.content, limit=SHORT_WORDS)))


def _share(message: Message, neighbour: Message, share: float) -> float:
    # "I got the Lisbon job!" / "Congratulations!!" / "Senior backend engineer, starting in June.": a speaker's
    # previous turn, two back, carries the subject of their next one.
    if neighbour.index == message.index - 1 and neighbour.speaker != message.speaker and _asks(neighbour.content):
        return ANSWER_SHARE  # "How was Chicago? Did Camille survive the aunties?" / "she did better than me! …"
    continued = neighbour.speaker == message.speaker and abs(neighbour.index - message.index) == 2
    return SAME_SPEAKER_SHARE if continued else share


def _asks(content: str) -> bool:
    return content.rstrip().endswith("?")


def _ids(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _fuse(text: list[str], dense: list[str], by_fact: list[str], expanded: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for ranking, weight in ((text, TEXT_WEIGHT), (dense, 1.0), (by_fact, GRAPH_WEIGHT), (expanded, GRAPH_WEIGHT)):
        for rank, key in enumerate(ranking):
            scores[key] = scores.get(key, 0.0) + weight / (MESSAGE_RRF_K + rank + 1)
    return scores


def _boosted(score: float, message: Message, named: list[str]) -> float:
    return score * SPEAKER_BOOST if message.speaker in named else score
