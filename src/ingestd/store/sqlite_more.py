"""The SQLite store's smaller queries: workers, numbers (a mixin of ``SQLiteJobStore``; API keys: ``sqlite_keys``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ingestd.models import JSON
from ingestd.store import records


class SQLiteQueries:
    """Single-statement reads and writes; ``SQLiteJobStore`` provides ``_read`` and ``_execute``."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def live_workers(self, within_seconds: float) -> list[JSON]:
        rows = await self._read(
            "SELECT id, last_seen, jobs FROM workers WHERE last_seen >= ? ORDER BY id", (time.time() - within_seconds,)
        )
        return [{"id": r[0], "last_seen": records.as_datetime(r[1]), "jobs": r[2]} for r in rows]

    async def queue_stats(self) -> list[JSON]:
        rows = await self._read(
            "SELECT pipeline, sum(status = 'queued'), sum(status = 'running'), "
            "min(CASE WHEN status = 'queued' THEN created_at END) FROM jobs "
            "WHERE status IN ('queued', 'running') GROUP BY pipeline ORDER BY pipeline"
        )
        now = time.time()
        return [
            {
                "pipeline": r[0],
                "queued": int(r[1]),
                "running": int(r[2]),
                "oldest_queued_age": (now - r[3]) if r[3] is not None else 0.0,
            }
            for r in rows
        ]

    async def recent_durations(self, pipeline: str, limit: int = 50) -> list[tuple[float, float]]:
        rows = await self._read(
            "SELECT units, finished_at - started_at FROM jobs WHERE pipeline = ? AND status = 'succeeded' "
            "ORDER BY finished_at DESC LIMIT ?",
            (pipeline, limit),
        )
        return [(float(r[0]), float(r[1])) for r in rows]
