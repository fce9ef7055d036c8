"""Extraction of entities and facts from one episode: the contract, the JSON schema, and the LLM extractor.

An extractor answers ``{"entities": [{name, type, summary}], "facts": [{subject, predicate, object, sentence,
valid_at, invalid_at}]}`` plus who produced it (``provider``, ``model``, ``method``) and ``usage``. The offline
extractor (spaCy) lives in ``offline.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

from ingestd import errors
from ingestd.models import JSON
from ingestd.providers.base import ChatModel

_NULLABLE_STRING: JSON = {"type": ["string", "null"]}

EXTRACTION_SCHEMA: JSON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entities", "facts"],
    "properties": {
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type", "summary"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": ["person", "place", "organization", "thing"]},
                    "summary": {"type": "string"},
                },
            },
        },
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["subject", "predicate", "object", "sentence", "valid_at", "invalid_at"],
                "properties": {
                    "subject": {"type": "string"},
                    "predicate": {"type": "string"},
                    "object": {"type": "string"},
                    "sentence": {"type": "string"},
                    "valid_at": _NULLABLE_STRING,
                    "invalid_at": _NULLABLE_STRING,
                },
            },
        },
    },
}

SYSTEM_PROMPT = """You extract long-term memory from a chat (a user and an assistant, or several people).
Each line starts with its speaker; "I", "me" and "my" in a line mean that speaker: use the speaker's name
("user" lines without a name: "User"; an unnamed assistant's "I" is not a person to remember).
Return the people, places, organizations and notable things mentioned (name as written in full when known,
type, a one-sentence summary of what the chat says about them) and the facts stated about them as
(subject, predicate, object) with a short sentence stating the fact, naming the subject (never "I").
Use snake_case predicates such as lives_in, works_at, job_title, married_to, likes, knows, status.
valid_at / invalid_at: ISO-8601 times when the fact started / stopped being true, if the chat says so,
resolved against the reference time; otherwise null. Extract only what the chat states."""


class Extractor(Protocol):
    """Turns one episode into entities and facts."""

    name: str  # the provider name used for limits and usage (``ctx.call(name, ...)``)

    async def extract(self, episode: JSON, *, request_key: str | None = None) -> JSON: ...


def user_prompt(episode: JSON) -> str:
    return (
        f"Reference time: {episode['reference_time']}\nEpisode started at: {episode['started_at']}\n\n"
        f"Chat:\n{episode['text']}"
    )


def clean_extraction(data: Any) -> JSON:
    """Keep the well-formed entities and facts of an extractor's answer; drop the rest."""
    if not isinstance(data, dict):
        raise errors.PermanentError("the extractor did not answer a JSON object")
    entities = [
        {"name": str(e["name"]).strip(), "type": str(e.get("type") or "thing"), "summary": str(e.get("summary") or "")}
        for e in data.get("entities") or []
        if isinstance(e, dict) and str(e.get("name") or "").strip()
    ]
    facts = [
        {
            "subject": str(f["subject"]).strip(),
            "predicate": str(f["predicate"]).strip(),
            "object": str(f["object"]).strip(),
            "sentence": str(f.get("sentence") or "").strip(),
            "valid_at": f.get("valid_at") or None,
            "invalid_at": f.get("invalid_at") or None,
        }
        for f in data.get("facts") or []
        if isinstance(f, dict) and all(str(f.get(k) or "").strip() for k in ("subject", "predicate", "object"))
    ]
    return {"entities": entities, "facts": facts}


class LLMExtractor:
    """Extraction by any ``ChatModel`` (OpenAI-compatible chat completions with JSON-schema output)."""

    def __init__(self, chat: ChatModel) -> None:
        self.chat = chat
        self.name = chat.name

    async def extract(self, episode: JSON, *, request_key: str | None = None) -> JSON:
        answer = await self.chat.complete_json(
            SYSTEM_PROMPT,
            user_prompt(episode),
            schema=EXTRACTION_SCHEMA,
            schema_name="memory_extraction",
            request_key=request_key,
        )
        return {
            **clean_extraction(answer.data),
            "provider": answer.provider,
            "model": answer.model,
            "method": "llm",
            "usage": dict(answer.usage),
        }
