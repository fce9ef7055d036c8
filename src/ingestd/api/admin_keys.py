"""``/v1/admin/keys``: list, create and revoke API keys, for a key with the ``admin`` scope (``auth.required_scope``).

Responses name keys by id; a secret appears once, in the answer to the create that made it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator

from ingestd import errors, keys
from ingestd.api import auth, views

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/admin/keys", tags=["admin"])


async def admin_key(request: Request) -> keys.ApiKey:
    """FastAPI dependency: the request's key, which has the ``admin`` scope (checked by ``current_key``). Open mode
    has no admin API: the first keys are made with ``ingestd keys create``."""
    key = await auth.current_key(request)
    if key is None:
        raise errors.Unauthorized("the admin API needs a key with the admin scope: `ingestd keys create --scope admin`")
    return key


Admin = Annotated[keys.ApiKey, Depends(admin_key)]


class KeyIn(BaseModel):
    """A new key: its tenant, scopes (default: everything but ``admin``), a name, and when it expires."""

    tenant: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default=list(keys.DEFAULT_SCOPES), min_length=1, max_length=len(keys.SCOPES))
    name: str | None = Field(default=None, max_length=200)
    expires_at: datetime | None = Field(default=None, description="an absolute expiry (ISO 8601 with a zone)")
    expires_in_seconds: float | None = Field(default=None, gt=0, description="or an expiry relative to now")

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        return list(keys.parse_scopes(value))

    @field_validator("expires_at")
    @classmethod
    def _with_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-31T00:00:00Z")
        return value

    def expiry(self) -> datetime | None:
        if self.expires_at is not None and self.expires_in_seconds is not None:
            raise errors.InvalidInput("give expires_at or expires_in_seconds, not both", field="expires_in_seconds")
        if self.expires_in_seconds is not None:
            return datetime.now(UTC) + timedelta(seconds=self.expires_in_seconds)
        return self.expires_at


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


@router.get("", summary="Every API key (of one tenant with ?tenant=), without secrets")
async def list_keys(
    request: Request, admin: Admin, tenant: Annotated[str | None, Query(max_length=200)] = None
) -> views.JSONOut:
    found = await _store(request).list_api_keys(tenant)
    return views.JSONOut({"keys": [k.to_json() for k in found]})


@router.post("", status_code=201, summary="Create a key; its secret is in this answer only")
async def create_key(request: Request, admin: Admin, body: KeyIn) -> views.JSONOut:
    key, secret = await auth.make_key(
        _store(request), body.tenant, scopes=tuple(body.scopes), name=body.name, expires_at=body.expiry()
    )
    return views.JSONOut({**key.to_json(), "secret": secret}, status_code=201)


@router.post("/{key_id}/revoke", summary="Revoke a key: every API process refuses it within seconds (idempotent)")
async def revoke_key(request: Request, admin: Admin, key_id: str) -> views.JSONOut:
    key = await _store(request).revoke_api_key(key_id)
    if key is None:
        raise errors.NotFound(f"no API key {key_id!r}")
    cache: auth.KeyCache = request.app.state.key_cache
    cache.forget(key.id)
    auth.logger.info("api key %s revoked by %s", key.id, admin.id)
    return views.JSONOut(key.to_json())
