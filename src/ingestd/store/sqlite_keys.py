"""The SQLite store's API keys (a mixin of ``SQLiteJobStore``): times are Unix seconds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingestd import keys
from ingestd.store import records

_COLUMNS = records.API_KEY_COLUMNS
_key = records.api_key_from_row
_INSERT = (
    f"INSERT INTO api_keys ({records.NEW_API_KEY_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key_hash) DO NOTHING"
)


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class SQLiteKeys:
    """API key rows; ``SQLiteJobStore`` provides ``_read``."""

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def _insert_api_key(self, key: records.NewApiKey) -> None:
        *columns, expires_at = key
        await self._read(_INSERT, (*columns, _seconds(expires_at), time.time()))

    async def api_key_for_hash(self, key_hash: str) -> keys.ApiKey | None:
        rows = await self._read(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
        return next((_key(row) for row in rows), None)

    async def list_api_keys(self, tenant: str | None = None) -> list[keys.ApiKey]:
        where, params = (" WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        rows = await self._read(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, key_id", params)
        return [_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str, tenant: str | None = None) -> keys.ApiKey | None:
        """Revoke a key (again: no change); None when no such key (of ``tenant``, when given)."""
        mine = "key_id = ? AND (? IS NULL OR tenant = ?)"
        await self._read(
            f"UPDATE api_keys SET revoked_at = ? WHERE {mine} AND revoked_at IS NULL",
            (time.time(), key_id, tenant, tenant),
        )
        rows = await self._read(f"SELECT {_COLUMNS} FROM api_keys WHERE {mine}", (key_id, tenant, tenant))
        return next((_key(row) for row in rows), None)

    async def has_api_keys(self) -> bool:
        rows = await self._read("SELECT EXISTS (SELECT 1 FROM api_keys)")
        ((exists,),) = rows
        return bool(exists)
