"""Normalised names and predicates: what makes "Ms. Schmidt", "emma  schmidt" and "Emma Schmidt" comparable."""

from __future__ import annotations

import re
import unicodedata

HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mme", "herr", "frau"})
_NON_WORD = re.compile(r"[^\w\s'-]+", re.UNICODE)

# Entity types every extractor maps onto.
PERSON, PLACE, ORGANIZATION, THING = "person", "place", "organization", "thing"
TYPES = (PERSON, PLACE, ORGANIZATION, THING)

# Predicates that hold one value at a time: a new object replaces (closes) the current one.
FUNCTIONAL = frozenset(
    {"lives_in", "works_at", "status", "job_title", "married_to", "age", "employer", "based_in", "role", "located_in"}
)
_SYNONYMS = {
    "live_in": "lives_in",
    "lives_at": "lives_in",
    "live_at": "lives_in",
    "moved_to": "lives_in",
    "move_to": "lives_in",
    "resides_in": "lives_in",
    "reside_in": "lives_in",
    "relocated_to": "lives_in",
    "relocate_to": "lives_in",
    "work_at": "works_at",
    "work_for": "works_at",
    "works_for": "works_at",
    "employed_by": "works_at",
    "employed_at": "works_at",
    "joined": "works_at",
    "join": "works_at",
    "work_as": "job_title",
    "works_as": "job_title",
    "is_a": "job_title",
    "based_at": "based_in",
}


def fold(text: str) -> str:
    """Lowercase ASCII-folded text with punctuation removed and spaces collapsed."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = _NON_WORD.sub(" ", text).replace("'s ", " ")
    return " ".join(text.split())


def normalise_name(name: str) -> str:
    """The comparable form of an entity name: folded, honorifics and leading articles dropped."""
    words = fold(name).split()
    while len(words) > 1 and words[0] in HONORIFICS | {"the"}:
        words = words[1:]
    return " ".join(words)


def has_honorific(name: str) -> bool:
    words = fold(name).split()
    return len(words) > 1 and words[0] in HONORIFICS


def normalise_predicate(predicate: str) -> str:
    """``Works At`` / ``work at`` / ``work_for`` → ``works_at``; unknown ones become snake_case."""
    key = "_".join(fold(predicate).replace("-", " ").split())
    return _SYNONYMS.get(key, key)


def normalise_type(kind: str) -> str:
    """Map extractor labels (spaCy's PERSON/GPE/ORG, an LLM's free text) onto ``TYPES``."""
    k = fold(kind)
    if k in {"person", "people", "per", "human", "norp"}:
        return PERSON
    if k in {"place", "location", "loc", "gpe", "city", "country", "fac", "facility", "address"}:
        return PLACE
    if k in {"organization", "organisation", "org", "company", "employer", "institution", "team"}:
        return ORGANIZATION
    return THING


def is_functional(predicate: str) -> bool:
    return predicate in FUNCTIONAL
