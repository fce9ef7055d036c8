"""``GraphChanges`` to and from JSON, so the ``resolve`` step's output can be checkpointed and applied later."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ingestd.models import JSON
from ingestd.pipelines.memory.graph import (
    GraphChanges,
    Invalidation,
    NewAlias,
    NewEntity,
    NewEpisode,
    NewFact,
    NewMessage,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string (or datetime, or None) as a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def pack_vector(vector: Sequence[float] | None) -> str | None:
    """A vector as base64 of its float32 bytes: a quarter of its JSON size in a checkpoint, and faster to parse."""
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(packed: str | Sequence[float] | None) -> list[float] | None:
    """The inverse of ``pack_vector``; a plain list (a checkpoint written before packing) passes through."""
    if packed is None or not isinstance(packed, str):
        return None if packed is None else [float(x) for x in packed]
    return [float(x) for x in np.frombuffer(base64.b64decode(packed), dtype="<f4")]


def changes_to_json(changes: GraphChanges) -> JSON:
    """A JSON-serialisable form of ``changes``."""
    return {
        "job_id": changes.job_id,
        "embedding_model": changes.embedding_model,
        "episodes": [
            {**e.__dict__, "started_at": _iso(e.started_at), "reference_time": _iso(e.reference_time)}
            for e in changes.episodes
        ],
        "entities": [{**e.__dict__, "embedding": pack_vector(e.embedding)} for e in changes.entities],
        "aliases": [dict(a.__dict__) for a in changes.aliases],
        "summaries": dict(changes.summaries),
        "facts": [
            {
                **f.__dict__,
                "valid_at": _iso(f.valid_at),
                "invalid_at": _iso(f.invalid_at),
                "embedding": pack_vector(f.embedding),
            }
            for f in changes.facts
        ],
        "invalidations": [{**i.__dict__, "invalid_at": _iso(i.invalid_at)} for i in changes.invalidations],
        "messages": [{**m.__dict__, "at": _iso(m.at), "embedding": pack_vector(m.embedding)} for m in changes.messages],
        "stats": dict(changes.stats),
    }


def changes_from_json(data: JSON) -> GraphChanges:
    """The inverse of ``changes_to_json``."""
    return GraphChanges(
        job_id=data["job_id"],
        embedding_model=data["embedding_model"],
        episodes=[
            NewEpisode(
                **{**e, "started_at": parse_time(e["started_at"]), "reference_time": parse_time(e["reference_time"])}
            )
            for e in data["episodes"]
        ],
        entities=[NewEntity(**{**e, "embedding": unpack_vector(e["embedding"])}) for e in data["entities"]],
        aliases=[NewAlias(**a) for a in data["aliases"]],
        summaries=dict(data["summaries"]),
        facts=[
            NewFact(
                **{
                    **f,
                    "valid_at": parse_time(f["valid_at"]),
                    "invalid_at": parse_time(f["invalid_at"]),
                    "embedding": unpack_vector(f["embedding"]),
                }
            )
            for f in data["facts"]
        ],
        invalidations=[
            Invalidation(
                fact_id=i["fact_id"], invalid_at=parse_time(i["invalid_at"]) or _never(), by_fact_id=i["by_fact_id"]
            )
            for i in data["invalidations"]
        ],
        messages=[
            NewMessage(**{**m, "at": parse_time(m["at"]) or _never(), "embedding": unpack_vector(m["embedding"])})
            for m in data.get("messages") or []
        ],
        stats=dict(data["stats"]),
    )


def _never() -> datetime:
    raise ValueError("an invalidation without invalid_at")
