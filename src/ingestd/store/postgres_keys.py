"""The PostgreSQL store's API keys (a mixin of ``PostgresJobStore``): times are the server's ``now()``."""

from __future__ import annotations

from ingestd import keys
from ingestd.store import records
from ingestd.store.postgres_base import PostgresBase

_COLUMNS = records.API_KEY_COLUMNS
_key = records.api_key_from_row
_INSERT = (
    f"INSERT INTO api_keys ({records.NEW_API_KEY_COLUMNS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, now()) "
    "ON CONFLICT (key_hash) DO NOTHING"
)


class PostgresKeys(PostgresBase):
    """API key rows of ``PostgresJobStore``."""

    async def _insert_api_key(self, key: records.NewApiKey) -> None:
        await self._execute(_INSERT, *key, idempotent=True)

    async def api_key_for_hash(self, key_hash: str) -> keys.ApiKey | None:
        row = await self._fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash, idempotent=True)
        return _key(row) if row is not None else None

    async def list_api_keys(self, tenant: str | None = None) -> list[keys.ApiKey]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, key_id",
            tenant,
            idempotent=True,
        )
        return [_key(r) for r in rows]

    async def revoke_api_key(self, key_id: str, tenant: str | None = None) -> keys.ApiKey | None:
        """Revoke a key (again: no change); None when no such key (of ``tenant``, when given)."""
        mine = "key_id = $1 AND ($2::text IS NULL OR tenant = $2)"
        await self._execute(
            f"UPDATE api_keys SET revoked_at = now() WHERE {mine} AND revoked_at IS NULL",
            key_id,
            tenant,
            idempotent=True,
        )
        row = await self._fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE {mine}", key_id, tenant, idempotent=True)
        return _key(row) if row is not None else None

    async def has_api_keys(self) -> bool:
        return bool(await self._fetchval("SELECT EXISTS (SELECT 1 FROM api_keys)", idempotent=True))
