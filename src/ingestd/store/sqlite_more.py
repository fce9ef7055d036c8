"""The SQLite store's smaller queries: workers, numbers, API keys (a mixin of ``SQLiteJobStore``)."""

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

    async def add_api_key(self, key_hash: str, tenant: str) -> None:
        await self._read(
            "INSERT INTO api_keys (key_hash, tenant, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key_hash) DO UPDATE SET tenant = excluded.tenant",
            (key_hash, tenant, time.time()),
        )

    async def tenant_for_key(self, key_hash: str) -> str | None:
        rows = await self._read("SELECT tenant FROM api_keys WHERE key_hash = ?", (key_hash,))
        return str(rows[0][0]) if rows else None

    async def has_api_keys(self) -> bool:
        rows = await self._read("SELECT EXISTS (SELECT 1 FROM api_keys)")
        return bool(rows[0][0])
