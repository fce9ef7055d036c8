"""``GraphChanges`` to and from JSON, so the ``resolve`` step's output can be checkpointed and applied later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingestd.models import JSON
from ingestd.pipelines.memory.graph import (
    GraphChanges,
    Invalidation,
    NewAlias,
    NewEntity,
    NewEpisode,
    NewFact,
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


def changes_to_json(changes: GraphChanges) -> JSON:
    """A JSON-serialisable form of ``changes``."""
    return {
        "job_id": changes.job_id,
        "embedding_model": changes.embedding_model,
        "episodes": [
            {**e.__dict__, "started_at": _iso(e.started_at), "reference_time": _iso(e.reference_time)}
            for e in changes.episodes
        ],
        "entities": [dict(e.__dict__) for e in changes.entities],
        "aliases": [dict(a.__dict__) for a in changes.aliases],
        "summaries": dict(changes.summaries),
        "facts": [
            {**f.__dict__, "valid_at": _iso(f.valid_at), "invalid_at": _iso(f.invalid_at)} for f in changes.facts
        ],
        "invalidations": [{**i.__dict__, "invalid_at": _iso(i.invalid_at)} for i in changes.invalidations],
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
        entities=[NewEntity(**e) for e in data["entities"]],
        aliases=[NewAlias(**a) for a in data["aliases"]],
        summaries=dict(data["summaries"]),
        facts=[
            NewFact(**{**f, "valid_at": parse_time(f["valid_at"]), "invalid_at": parse_time(f["invalid_at"])})
            for f in data["facts"]
        ],
        invalidations=[
            Invalidation(
                fact_id=i["fact_id"], invalid_at=parse_time(i["invalid_at"]) or _never(), by_fact_id=i["by_fact_id"]
            )
            for i in data["invalidations"]
        ],
        stats=dict(data["stats"]),
    )


def _never() -> datetime:
    raise ValueError("an invalidation without invalid_at")
