"""The SQLite store's small reads: live workers, queue numbers, durations (a mixin of ``SQLiteJobStore``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ingestd.models import JSON
from ingestd.store import records


class SQLiteReads:
    """Single-statement reads and writes; ``SQLiteJobStore`` provides ``_read`` and ``_execute``."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def live_workers(self, within_seconds: float) -> list[JSON]:
        rows = await self._read(
            f"SELECT {records.WORKER_COLUMNS} FROM workers WHERE last_seen >= ? ORDER BY id",
            (time.time() - within_seconds,),
        )
        return [records.worker_from_row(r) for r in rows]

    async def queue_stats(self) -> list[JSON]:
        rows = await self._read(
            "SELECT pipeline, sum(status = 'queued'), sum(status = 'running'), "
            "min(CASE WHEN status = 'queued' THEN created_at END) FROM jobs "
            "WHERE status IN ('queued', 'running') GROUP BY pipeline ORDER BY pipeline"
        )
        now = time.time()
        return [
            {
                "pipeline": pipeline,
                "queued": int(queued),
                "running": int(running),
                "oldest_queued_age": (now - oldest) if oldest is not None else 0.0,
            }
            for pipeline, queued, running, oldest in rows
        ]

    async def recent_durations(self, pipeline: str, limit: int = 50) -> list[tuple[float, float]]:
        rows = await self._read(
            "SELECT units, finished_at - started_at FROM jobs WHERE pipeline = ? AND status = 'succeeded' "
            "ORDER BY finished_at DESC LIMIT ?",
            (pipeline, limit),
        )
        return [(float(units), float(seconds)) for units, seconds in rows]
