"""Resolution: match one job's extracted entities and facts against what the user's graph already holds.

Pure functions over plain data (no I/O), so every rule is unit-tested:

* an entity mention joins an existing entity when its normalised name is a known alias, when it is a lone
  first or last name (or an honorific + surname) that fits exactly one known person, when its name embedding
  is very close to one of the same type, or when it is a near-spelling of exactly one known name of that type
  (same initials, characters >= 92 % alike, embeddings not disagreeing); otherwise it is new;
* a fact already current (same subject, predicate and object) is not added again;
* a fact with a functional predicate (``lives_in``, ``works_at``...) and another object closes the current one
  (``invalid_at`` = the new fact's ``valid_at``) instead of deleting it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from ingestd.pipelines.memory import names
from ingestd.pipelines.memory.codec import parse_time
from ingestd.pipelines.memory.graph import Fact, Invalidation, KnownEntity, NewAlias, NewEntity, NewFact

SIMILARITY_THRESHOLD = 0.9  # cosine of name embeddings above which two same-type names are one entity
SPELLING_RATIO = 0.92  # difflib similarity of two normalised names for a near-spelling ("Emma Schmit")...
SPELLING_COSINE = 0.6  # ...when their embeddings agree this much (Anna Miller / Anna Muller: 0.91, kept apart)


@dataclass
class _Candidate:
    id: str
    name: str
    type: str
    aliases: set[str]
    vector: list[float] | None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    va, vb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if va.shape != vb.shape:
        return 0.0
    denominator = float(np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0
    return float(va @ vb) / denominator


def _compatible(a: str, b: str) -> bool:
    return a == b or names.THING in (a, b)


@dataclass
class EntityResolver:
    """Maps mentions to entity ids, creating new entities (with ids from ``id_prefix``) when nothing fits."""

    known: list[KnownEntity]
    id_prefix: str
    threshold: float = SIMILARITY_THRESHOLD
    new_entities: list[NewEntity] = field(default_factory=list)
    new_aliases: list[NewAlias] = field(default_factory=list)
    merged: int = 0

    def __post_init__(self) -> None:
        self._candidates = [_Candidate(k.id, k.name, k.type, set(k.aliases), k.embedding) for k in self.known]
        self._by_alias = {a: c for c in self._candidates for a in c.aliases}

    def lookup(self, name: str) -> str | None:
        """The id of an entity already known under this exact (normalised) name, if any."""
        hit = self._by_alias.get(names.normalise_name(name))
        return hit.id if hit is not None else None

    def resolve(self, name: str, kind: str, summary: str, vector: list[float] | None) -> str | None:
        """The entity id for a mention (None for an empty name)."""
        norm = names.normalise_name(name)
        if not norm:
            return None
        kind = names.normalise_type(kind)
        match = self._match(norm, name, kind, vector)
        if match is None:
            match = _Candidate(f"{self.id_prefix}{len(self.new_entities)}", name.strip(), kind, set(), vector)
            self._candidates.append(match)
            self.new_entities.append(NewEntity(match.id, match.name, kind, summary, vector))
        elif norm not in match.aliases:
            self.merged += 1
        self._add_alias(match, norm)
        return match.id

    def _add_alias(self, candidate: _Candidate, alias: str) -> None:
        if alias not in candidate.aliases:
            candidate.aliases.add(alias)
            self._by_alias.setdefault(alias, candidate)
            self.new_aliases.append(NewAlias(candidate.id, alias))

    def _match(self, norm: str, raw: str, kind: str, vector: list[float] | None) -> _Candidate | None:
        hit = self._by_alias.get(norm)
        if hit is not None and _compatible(hit.type, kind):
            return hit
        words = norm.split()
        if len(words) == 1 and kind in (names.PERSON, names.THING):
            people = [c for c in self._candidates if c.type == names.PERSON and _part_of_name(words[0], c, raw)]
            if len(people) == 1:
                return people[0]
        if vector is not None:
            best = max(
                ((c, _cosine(vector, c.vector)) for c in self._candidates if c.vector and c.type == kind),
                key=lambda pair: pair[1],
                default=None,
            )
            if best is not None and best[1] >= self.threshold:
                return best[0]
        return self._near_spelling(norm, kind, vector)

    def _near_spelling(self, norm: str, kind: str, vector: list[float] | None) -> _Candidate | None:
        """One known name of the same type spelt almost the same ("Emma Schmit", "Anna Mueller"): same number of
        words with the same initials, character similarity >= 0.92, and (with embeddings) cosine >= 0.6."""
        found = [
            c
            for c in self._candidates
            if c.type == kind
            and any(_spelt_alike(norm, a) for a in c.aliases)
            and (vector is None or c.vector is None or _cosine(vector, c.vector) >= SPELLING_COSINE)
        ]
        return found[0] if len(found) == 1 else None  # two look-alikes: not guessed


def _spelt_alike(a: str, b: str) -> bool:
    wa, wb = a.split(), b.split()
    if len(wa) != len(wb) or any(x[0] != y[0] for x, y in zip(wa, wb, strict=True)):
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= SPELLING_RATIO


def _part_of_name(word: str, candidate: _Candidate, raw: str) -> bool:
    """ "Schmidt"/"Ms. Schmidt" is the surname of "Emma Schmidt"; "Emma" her first name (not after an honorific)."""
    for alias in candidate.aliases:
        parts = alias.split()
        if len(parts) > 1 and (parts[-1] == word or (parts[0] == word and not names.has_honorific(raw))):
            return True
    return False


@dataclass
class FactResolver:
    """Turns extracted facts into new facts and invalidations against the user's current facts."""

    current: list[Fact]
    id_prefix: str
    facts: list[NewFact] = field(default_factory=list)
    invalidations: list[Invalidation] = field(default_factory=list)
    duplicates: int = 0

    def __post_init__(self) -> None:
        # (subject, predicate) -> [(fact id, object key, valid_at)] of the facts true now (old and new)
        self._open: dict[tuple[str, str], list[tuple[str, str, datetime | None]]] = {}
        for f in self.current:
            self._open.setdefault((f.subject_id, f.predicate), []).append(
                (f.id, _object_key(f.object_id, f.object), f.valid_at)
            )

    def add(self, fact: NewFact) -> None:
        key = (fact.subject_id, fact.predicate)
        obj = _object_key(fact.object_id, fact.object)
        open_facts = self._open.setdefault(key, [])
        if any(o == obj for _, o, _ in open_facts):
            self.duplicates += 1
            return
        fact = replace(fact, id=f"{self.id_prefix}{len(self.facts)}")
        if names.is_functional(fact.predicate) and fact.invalid_at is None:
            fact = self._supersede(fact, open_facts)
        self.facts.append(fact)
        if fact.invalid_at is None:
            open_facts.append((fact.id, obj, fact.valid_at))

    def _supersede(self, fact: NewFact, open_facts: list[tuple[str, str, datetime | None]]) -> NewFact:
        when = fact.valid_at
        for old_id, old_obj, old_valid in list(open_facts):
            if when is not None and old_valid is not None and old_valid > when:
                return replace(fact, invalid_at=old_valid)  # told late about an older state: it is history already
            open_facts.remove((old_id, old_obj, old_valid))
            self._close(old_id, when or fact.valid_at)
        return fact

    def _close(self, fact_id: str, when: datetime | None) -> None:
        closed_by = f"{self.id_prefix}{len(self.facts)}"
        at = when or datetime.min.replace(tzinfo=UTC)
        pending = next((i for i, f in enumerate(self.facts) if f.id == fact_id), None)
        if pending is not None:  # a fact of this same job: write it closed
            self.facts[pending] = replace(self.facts[pending], invalid_at=at)
        else:
            self.invalidations.append(Invalidation(fact_id, at, closed_by))


def _object_key(object_id: str | None, value: str) -> str:
    return object_id or names.normalise_name(value)


def fact_time(value: object, fallback: datetime | None) -> datetime | None:
    """An extractor's time (ISO text or None), or ``fallback`` when missing or unparseable."""
    try:
        parsed = parse_time(value)
    except (TypeError, ValueError):
        parsed = None
    return parsed or fallback
