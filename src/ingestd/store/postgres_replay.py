"""Seeding a replayed job's checkpoints on PostgreSQL (a mixin of ``PostgresJobStore``; ``api/replay.py`` decides
which)."""

from __future__ import annotations

from collections.abc import Sequence

from ingestd.models import Step
from ingestd.store import records
from ingestd.store.postgres_base import PostgresBase
from ingestd.store.records import dumps

_DUE = "UPDATE jobs SET run_at = now(), updated_at = now() WHERE id = $1 AND status = 'queued' RETURNING id"
_INSERT = (
    f"INSERT INTO steps ({records.STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (job_id, key) DO NOTHING"
)


class PostgresReplay(PostgresBase):
    """``seed_steps`` for ``PostgresJobStore``."""

    async def seed_steps(self, job_id: str, steps: Sequence[Step]) -> bool:
        rows = [(job_id, s.key, s.ok, dumps(s.output), records.dumps_or_none(s.error), s.attempts,
                 s.started_at, s.finished_at, dumps(s.usage)) for s in steps]  # fmt: skip
        async with self._acquire() as conn, conn.transaction():
            if await conn.fetchval(_DUE, job_id) is None:
                return False
            if rows:
                await conn.executemany(_INSERT, rows)
        self._wake(work=True, jobs=[job_id])
        return True
