"""Messages as memory items: each chat message kept whole, with its speaker, time and the dates it mentions."""

from __future__ import annotations

from datetime import datetime, time

from ingestd.models import JSON
from ingestd.pipelines.memory import dates, when
from ingestd.pipelines.memory.codec import parse_time, unpack_vector
from ingestd.pipelines.memory.graph import NewMessage


def dated_messages(episode: JSON) -> list[JSON]:
    """The episode's messages with relative dates resolved against each message's own time."""
    out: list[JSON] = []
    for message in episode["messages"]:
        at = parse_time(message["timestamp"])
        assert at is not None
        content, labels = dates.annotate(message["content"], at)
        out.append(
            {
                "id": message.get("id") or f"{episode['session_id']}:{message.get('index', len(out))}",
                "index": int(message.get("index", len(out))),
                "role": message["role"],
                "speaker": message.get("speaker") or str(message["role"]).capitalize(),
                "content": content,
                "at": message["timestamp"],
                "dates": labels,
            }
        )
    return out


def new_message(session_id: str, message: JSON) -> NewMessage:
    at = parse_time(message["at"])
    assert at is not None
    return NewMessage(
        id=message["id"],
        session_id=session_id,
        index=message["index"],
        role=message["role"],
        speaker=message["speaker"],
        content=message["content"],
        at=at,
        dates=list(message["dates"]),
        embedding=unpack_vector(message.get("vector")),
    )


def fact_day(sentence: str, said_at: datetime | None) -> datetime | None:
    """When a fact became true: the day its sentence names ("I went there yesterday"), else when it was said."""
    if said_at is None or not sentence:
        return said_at
    days = [m for m in when.resolve_times(sentence, said_at) if m.granularity == "day" and m.first <= said_at.date()]
    return datetime.combine(days[0].first, time(12), said_at.tzinfo) if days else said_at
