"""API keys and tenants.

A key's secret is shown once (``ingestd keys create --tenant NAME``, ``POST /v1/admin/keys``) and stored only as
its SHA-256; its id (``key_...``) is what responses and logs name. A request presents the secret as
``Authorization: Bearer KEY`` (or ``X-API-Key: KEY``); the key's tenant owns every job the request touches, and
the key's scopes (``ingestd.keys``) decide what the request may do (``required_scope``).

Each process caches what it read about a key for ``KEY_CACHE_SECONDS`` only, so a key revoked on any process (or
the CLI) is refused by every API process within that time; expiry is checked on every request.

With no key in the store the server runs *open*: every request is tenant ``default`` with every scope. Open mode
is only allowed on a loopback address: ``check_bind`` refuses to listen elsewhere, and ``current_tenant`` also
refuses open requests that do not come from loopback (behind a misconfigured proxy, say).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import TYPE_CHECKING

from fastapi import Request

from ingestd import errors, keys

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

OPEN_TENANT = keys.OPEN_TENANT
KEY_PREFIX = keys.SECRET_PREFIX
KEY_CACHE_SECONDS = 2.0  # how stale a process' view of a key may be: a revoked key is refused everywhere after this
_RECHECK_OPEN_SECONDS = 1.0  # how stale "no keys exist" may be, so a new key closes open mode promptly
logger = logging.getLogger("ingestd.api.auth")

hash_key = keys.hash_secret
generate_key = keys.new_secret
make_key = keys.make_key


async def create_key(store: JobStore, tenant: str) -> str:
    """Make a key for ``tenant`` with the default scopes; its secret (the only time it is seen)."""
    return (await make_key(store, tenant))[1]


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


def required_scope(method: str, path: str) -> str:
    """The scope a request needs, from its route's path template."""
    if path.startswith("/v1/admin"):
        return "admin"
    reading = method in ("GET", "HEAD", "OPTIONS")
    if path.startswith("/v1/memory"):
        return "memory:read" if reading else "jobs:write"
    if path.startswith("/v1/webhooks/secret"):
        return "jobs:write"  # reading the signing secret is as good as sending webhooks
    return "jobs:read" if reading else "jobs:write"


class KeyCache:
    """What this process read about keys, for ``KEY_CACHE_SECONDS``; "no keys yet" for ``_RECHECK_OPEN_SECONDS``."""

    def __init__(self, ttl: float = KEY_CACHE_SECONDS) -> None:
        self._keys: dict[str, tuple[float, keys.ApiKey | None]] = {}
        self._ttl = ttl
        self._has_keys = False
        self._checked_at = -1e9

    async def key(self, store: JobStore, secret: str) -> keys.ApiKey | None:
        digest = keys.hash_secret(secret)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await store.api_key_for_hash(digest)
        if len(self._keys) >= 100_000:
            self._keys.clear()
        self._keys[digest] = (now, key)
        return key

    def forget(self, key_id: str) -> None:
        """Drop what this process knows of a key (it was revoked here: no need to wait for the others' TTL)."""
        for digest, (_, key) in list(self._keys.items()):
            if key is not None and key.id == key_id:
                del self._keys[digest]

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


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


async def current_key(request: Request) -> keys.ApiKey | None:
    """FastAPI dependency: the request's active key, checked for the scope its route needs (None in open mode)."""
    state = request.app.state
    store: JobStore = state.store
    cache: KeyCache = state.key_cache
    secret = _presented_key(request)
    if secret is not None:
        key = await cache.key(store, secret)
        if key is None:
            raise errors.Unauthorized("unknown API key")
        if key.state() != "active":
            logger.info("refused api key %s: %s", key.id, key.state())
            raise errors.Unauthorized(f"API key {key.id} is {key.state()}")
        scope = required_scope(request.method, _route_path(request))
        if not key.allows(scope):
            raise errors.Forbidden(f"API key {key.id} lacks the scope {scope}", scope=scope)
        request.state.api_key_id = key.id
        return key
    if await cache.open_mode(store):
        client = request.client.host if request.client else "localhost"
        if is_loopback(client):
            return None
        raise errors.Unauthorized("this server has no API keys and only answers loopback clients")
    raise errors.Unauthorized("an API key is required: `Authorization: Bearer <key>`")


async def current_tenant(request: Request) -> str:
    """FastAPI dependency: the tenant of the request's API key (401 problem when missing or unknown, 403 when the
    key lacks the route's scope)."""
    key = await current_key(request)
    return key.tenant if key is not None else OPEN_TENANT
