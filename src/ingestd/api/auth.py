"""API keys and tenants.

A key is shown once (``ingestd keys create --tenant NAME``) and stored only as its SHA-256. A request names its
key as ``Authorization: Bearer KEY`` (or ``X-API-Key: KEY``); the key's tenant owns every job the request touches.

With no key in the store the server runs *open*: every request is tenant ``default``. Open mode is only allowed
on a loopback address: ``check_bind`` refuses to listen elsewhere, and ``current_tenant`` also refuses open
requests that do not come from loopback (behind a misconfigured proxy, say).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from typing import TYPE_CHECKING

from fastapi import Request

from ingestd import errors

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

OPEN_TENANT = "default"
KEY_PREFIX = "ik_"
_RECHECK_OPEN_SECONDS = 1.0  # how stale "no keys exist" may be, so a new key closes open mode promptly


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """A new random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_key(store: JobStore, tenant: str) -> str:
    """Make a key for ``tenant``, store its hash, return the key itself (the only time it is seen)."""
    if not tenant or len(tenant) > 200:
        raise errors.InvalidInput("a tenant name has 1 to 200 characters")
    key = generate_key()
    await store.add_api_key(hash_key(key), tenant)
    return key


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPv4/IPv6 addresses."""
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def check_bind(store: JobStore, host: str) -> None:
    """Refuse to serve open mode on a non-loopback address."""
    if not is_loopback(host) and not await store.has_api_keys():
        raise errors.Unauthorized(
            f"refusing to listen on {host} without API keys: create one with `ingestd keys create --tenant NAME`"
        )


class KeyCache:
    """Keys are never revoked, so key -> tenant answers are cached for good; "no keys yet" only briefly."""

    def __init__(self) -> None:
        self._tenants: dict[str, str] = {}
        self._has_keys = False
        self._checked_at = -1e9

    async def tenant(self, store: JobStore, key: str) -> str | None:
        digest = hash_key(key)
        tenant = self._tenants.get(digest)
        if tenant is None:
            tenant = await store.tenant_for_key(digest)
            if tenant is not None and len(self._tenants) < 100_000:
                self._tenants[digest] = tenant
        return tenant

    async def open_mode(self, store: JobStore) -> bool:
        if self._has_keys:
            return False
        now = time.monotonic()
        if now - self._checked_at > _RECHECK_OPEN_SECONDS:
            self._has_keys = await store.has_api_keys()
            self._checked_at = now
        return not self._has_keys


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise errors.Unauthorized("use `Authorization: Bearer <key>`")
    return request.headers.get("x-api-key") or None


async def current_tenant(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's API key (401 problem when missing or unknown)."""
    state = request.app.state
    store: JobStore = state.store
    cache: KeyCache = state.key_cache
    key = _presented_key(request)
    if key is not None:
        tenant = await cache.tenant(store, key)
        if tenant is None:
            raise errors.Unauthorized("unknown API key")
        return tenant
    if await cache.open_mode(store):
        client = request.client.host if request.client else "localhost"
        if is_loopback(client):
            return OPEN_TENANT
        raise errors.Unauthorized("this server has no API keys and only answers loopback clients")
    raise errors.Unauthorized("an API key is required: `Authorization: Bearer <key>`")
