"""Seeding a replayed job's checkpoints on SQLite (a mixin of ``SQLiteJobStore``; ``api/replay.py`` decides which)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ingestd.models import Step
from ingestd.store import records
from ingestd.store.records import dumps
from ingestd.store.wakeup import Wake


def seed(conn: sqlite3.Connection, wake: Wake, job_id: str, steps: Sequence[Step], now: float) -> bool:
    """Copy ``steps`` to the queued job ``job_id`` and make it due now, in one transaction (False: not queued)."""
    due = conn.execute(
        "UPDATE jobs SET run_at = ?, updated_at = ? WHERE id = ? AND status = 'queued' RETURNING id", (now, now, job_id)
    ).fetchone()
    if due is None:
        return False
    rows = [(job_id, s.key, s.ok, dumps(s.output), records.dumps_or_none(s.error), s.attempts,
             s.started_at.timestamp(), s.finished_at.timestamp(), dumps(s.usage)) for s in steps]  # fmt: skip
    conn.executemany(
        f"INSERT INTO steps ({records.STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
    )
    wake.work = True
    wake.jobs.append(job_id)
    return True


class SQLiteReplay:
    """``seed_steps``; ``SQLiteJobStore`` provides ``_write``."""

    async def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    async def seed_steps(self, job_id: str, steps: Sequence[Step]) -> bool:
        return bool(await self._write(seed, job_id, list(steps), time.time()))
