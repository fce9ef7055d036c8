"""The analysis of one conversation: three independent calls (structure, folder, discard) behind one interface.

``ChatAnalyzer`` asks a ``ChatModel`` (OpenAI-compatible chat completions with JSON-schema structured output),
one call per question, each a provider call through ``Context.call`` (fleet-wide limits, usage recorded).
``ExtractiveAnalyzer`` is the offline default: deterministic rules (``extractive``), no model, labelled
``extractive-offline`` in the result so nobody mistakes it for a language model's work.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipelines.audio import extractive

if TYPE_CHECKING:
    from ingestd.pipeline import Context
    from ingestd.providers.base import ChatModel, ChatResult


@dataclass(frozen=True)
class ConversationText:
    """What the analysis of one conversation reads."""

    text: str
    started_at: datetime | None = None
    language: str | None = None
    folders: list[JSON] = field(default_factory=list)
    utterances: list[JSON] = field(default_factory=list)  # who said what: {speaker, start, end, text, ...}
    segments: list[JSON] = field(default_factory=list)  # the transcript's segments: {speaker, text, ...}
    uploaded_at: datetime | None = None  # the job's creation: spoken dates are resolved against it when the start
    # time is unknown (no ``captured_at``), as a user uploading a recording just made would read "Friday"

    @property
    def dates_from(self) -> datetime | None:
        """The moment spoken dates ("by Friday", "tomorrow") are resolved against."""
        return self.started_at or self.uploaded_at


class Analyzer(Protocol):
    """Answers the three questions about a conversation; ``method`` says how (``llm`` or ``extractive``)."""

    provider: str
    method: str

    async def structure(self, ctx: Context, conv: ConversationText, key: str) -> JSON: ...

    async def folder(self, ctx: Context, conv: ConversationText, key: str) -> JSON: ...

    async def discard(self, ctx: Context, conv: ConversationText, key: str) -> JSON: ...


class ExtractiveAnalyzer:
    """The offline, deterministic analysis (no provider calls)."""

    provider = extractive.PROVIDER
    method = "extractive"  # rules, not a language model: the result says so

    async def structure(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        return extractive.structure(conv.text, conv.dates_from, conv.segments)

    async def folder(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        return extractive.choose_folder(conv.text, conv.folders)

    async def discard(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        return extractive.discard_check(conv.text)


def _nullable(kind: str) -> JSON:
    return {"type": [kind, "null"]}


def _object(**props: JSON) -> JSON:
    # Strict structured output: every property required, nothing else allowed.
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


STRUCTURE_SCHEMA = _object(
    title={"type": "string"},
    overview={"type": "string"},
    emoji={"type": "string"},
    category={"type": "string", "enum": [*extractive.CATEGORIES, "other"]},
    action_items={
        "type": "array",
        "items": _object(
            description={"type": "string"},
            due=_nullable("string"),
            due_text=_nullable("string"),
            owner=_nullable("string"),
        ),
    },
    events={
        "type": "array",
        "items": _object(
            title={"type": "string"},
            starts_at=_nullable("string"),
            when_text=_nullable("string"),
            description={"type": "string"},
        ),
    },
)
FOLDER_SCHEMA = _object(folder=_nullable("string"), reason={"type": "string"})
DISCARD_SCHEMA = _object(discard={"type": "boolean"}, reason={"type": "string"})

STRUCTURE_PROMPT = (
    "You turn the transcript of a recorded conversation into a structured note. Give a short title (at most 8"
    " words), a 1-3 sentence overview, one emoji, a category, the action items someone committed to or was asked"
    " to do (with a due date as YYYY-MM-DD when one is said, resolved against the start time, or the upload"
    " time when the start is unknown, and the spoken phrase, and the owner: the name said as its subject, else"
    " the speaker label of who took it on, or null), and calendar events mentioned"
    " (starts_at as YYYY-MM-DDTHH:MM:SS when known). Use only what the transcript says; answer in the"
    " transcript's language."
)
FOLDER_PROMPT = (
    "Pick the one folder this conversation belongs in, from the user's folders (name and description), or null"
    " when none fits. Answer with the folder's exact name and a short reason."
)
DISCARD_PROMPT = (
    "Decide whether this recording is worth keeping as a conversation. Discard background chatter, TV or radio,"
    " a few words of small talk, or noise transcribed as words; keep anything with content someone may want to"
    " find again. Give a short reason."
)


class ChatAnalyzer:
    """The analysis on a ``ChatModel``: three JSON-schema calls, each through ``ctx.call``."""

    def __init__(self, chat: ChatModel) -> None:
        self.chat = chat
        self.provider = chat.name
        self.method = "llm"

    async def _ask(self, ctx: Context, system: str, user: str, schema: JSON, name: str, key: str) -> JSON:
        """One call; the answer's fields plus ``usage`` (this call's model and tokens, for the result)."""
        request_key = f"{ctx.job.id}:{key}"

        async def complete() -> ChatResult:
            answer = await self.chat.complete_json(
                system, user, schema=schema, schema_name=name, request_key=request_key
            )
            # Context.call counts the call itself; the answer's own ``calls`` would count it twice.
            return dataclasses.replace(answer, usage={k: v for k, v in answer.usage.items() if k != "calls"})

        answer = await ctx.call(self.chat.name, complete)
        if not isinstance(answer.data, dict):
            raise errors.PermanentError(f"{self.chat.name} answered {name} with something that is not an object")
        usage = {"provider": answer.provider, "model": answer.model, **answer.usage}
        return {**answer.data, "usage": usage}

    async def structure(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        user = _header(conv) + "\n\nTranscript:\n" + _labelled_transcript(conv)
        data = await self._ask(ctx, STRUCTURE_PROMPT, user, STRUCTURE_SCHEMA, "conversation_structure", key)
        return _with_defaults(data, {"title": "", "overview": "", "emoji": "", "category": "other"})

    async def folder(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        if not conv.folders:
            return {"folder": None, "reason": "the request gave no folders"}  # nothing to ask, no call paid
        folders = json.dumps([{"name": f.get("name"), "description": f.get("description", "")} for f in conv.folders])
        user = f"Folders: {folders}\n\nTranscript:\n{conv.text}"
        data = await self._ask(ctx, FOLDER_PROMPT, user, FOLDER_SCHEMA, "conversation_folder", key)
        names = {str(f.get("name")) for f in conv.folders}
        if data.get("folder") not in names:  # a model may invent a folder: keep only the tenant's own
            reason = f"the model chose {data.get('folder')!r}, not one of the folders"
            data = {"folder": None, "reason": reason, "usage": data["usage"]}
        return data

    async def discard(self, ctx: Context, conv: ConversationText, key: str) -> JSON:
        user = _header(conv) + "\n\nTranscript:\n" + conv.text
        data = await self._ask(ctx, DISCARD_PROMPT, user, DISCARD_SCHEMA, "conversation_discard", key)
        return {"discard": bool(data.get("discard")), "reason": str(data.get("reason", "")), "usage": data["usage"]}


def _header(conv: ConversationText) -> str:
    started = conv.started_at.isoformat() if conv.started_at else "unknown"
    uploaded = f"\nUploaded at: {conv.uploaded_at.isoformat()}" if conv.uploaded_at and not conv.started_at else ""
    return f"Started at: {started}{uploaded}\nLanguage: {conv.language or 'unknown'}"


def _labelled_transcript(conv: ConversationText) -> str:
    """One line per segment, "speaker_1: …", when the segments have speakers; the plain text otherwise."""
    if not any(seg.get("speaker") for seg in conv.segments):
        return conv.text
    return "\n".join(f"{seg.get('speaker') or 'unknown'}: {seg.get('text', '')}" for seg in conv.segments)


def _with_defaults(data: JSON, defaults: dict[str, Any]) -> JSON:
    out = {**defaults, **data}
    out.setdefault("action_items", [])
    out.setdefault("events", [])
    return out


__all__ = ["Analyzer", "ChatAnalyzer", "ConversationText", "ExtractiveAnalyzer"]
