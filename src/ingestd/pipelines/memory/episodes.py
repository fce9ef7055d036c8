"""Split a chat session into episodes: runs of whole turns, bounded in messages and characters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestd.models import JSON


@dataclass(frozen=True)
class EpisodeLimits:
    max_messages: int = 8
    max_chars: int = 4_000


def _turns(messages: Sequence[Any]) -> list[list[Any]]:
    """A turn starts at each user message and holds the replies that follow it."""
    turns: list[list[Any]] = []
    for message in messages:
        if not turns or (message.role == "user" and turns[-1][-1].role != "user"):
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def split_episodes(
    session_id: str,
    messages: Sequence[Any],
    reference_time: datetime,
    limits: EpisodeLimits | None = None,
    ids: Sequence[str] | None = None,
) -> list[JSON]:
    """Group whole turns into episodes of at most ``max_messages`` / ``max_chars`` (a longer turn stands alone,
    cut at message boundaries). Each episode is JSON: index, session, text, started_at, reference_time, and its
    messages with their client ids (``ids``, default ``<session_id>:<index>``), speakers and positions."""
    limits = limits or EpisodeLimits()
    ids = ids or [f"{session_id}:{i}" for i in range(len(messages))]
    numbered = [_Numbered(m, ids[i], i) for i, m in enumerate(messages)]
    groups: list[list[Any]] = []
    for turn in _turns(numbered):
        for piece in _cut(turn, limits):
            last = groups[-1] if groups else None
            if last is not None and _fits(last + piece, limits):
                last.extend(piece)
            else:
                groups.append(list(piece))
    return [_episode(session_id, i, g, reference_time) for i, g in enumerate(groups)]


@dataclass(frozen=True)
class _Numbered:
    """A message with its client id and position in the session."""

    message: Any
    id: str
    index: int

    @property
    def role(self) -> str:
        return str(self.message.role)

    @property
    def content(self) -> str:
        return str(self.message.content)


def speaker_of(message: Any) -> str:
    """Who said it: the name given, else "User" or "Assistant" (or "System")."""
    return str(getattr(message, "name", None) or str(message.role).capitalize())


def _fits(messages: list[Any], limits: EpisodeLimits) -> bool:
    return len(messages) <= limits.max_messages and sum(len(m.content) for m in messages) <= limits.max_chars


def _cut(turn: list[Any], limits: EpisodeLimits) -> list[list[Any]]:
    pieces: list[list[Any]] = [[]]
    for message in turn:
        if pieces[-1] and not _fits([*pieces[-1], message], limits):
            pieces.append([])
        pieces[-1].append(message)
    return pieces


def _episode(session_id: str, index: int, numbered: list[_Numbered], reference_time: datetime) -> JSON:
    messages = [
        {
            "id": n.id,
            "index": n.index,
            "name": getattr(n.message, "name", None),
            "speaker": speaker_of(n.message),
            "role": n.role,
            "content": n.content,
            "timestamp": n.message.timestamp.isoformat(),
        }
        for n in numbered
    ]
    return {
        "index": index,
        "session_id": session_id,
        "text": "\n".join(f"{m['speaker'] if m['name'] else m['role']}: {m['content']}" for m in messages),
        "messages": messages,
        "started_at": messages[0]["timestamp"],
        "reference_time": reference_time.isoformat(),
    }
