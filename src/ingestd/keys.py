"""API keys as records: an id (shown, logged), a secret (shown once, stored as its SHA-256), a tenant, scopes and
a lifecycle (``active`` until revoked or past ``expires_at``).

Scopes: ``jobs:write`` (submit, cancel, delete, webhooks), ``jobs:read`` (read jobs, events, results, pipelines),
``memory:read`` (search a user's memory) and ``admin`` (manage keys; implies every other scope).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingestd import errors

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

SECRET_PREFIX = "ik_"
ID_PREFIX = "key_"
SCOPES = ("jobs:write", "jobs:read", "memory:read", "admin")
DEFAULT_SCOPES = ("jobs:write", "jobs:read", "memory:read")  # a tenant's key: everything but managing keys
OPEN_TENANT = "default"  # the tenant of every request while no key exists (open mode)
logger = logging.getLogger("ingestd.keys")


def hash_secret(secret: str) -> str:
    """The stored form of an API key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A new random secret (256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_id() -> str:
    """A new key id: public, safe to log."""
    return ID_PREFIX + secrets.token_hex(8)


def id_for_hash(key_hash: str) -> str:
    """The id of a key created before keys had ids (migration 0004 gives them this one)."""
    return ID_PREFIX + key_hash[:16]


def parse_scopes(scopes: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Scopes from a list or a space/comma-separated string, checked and in canonical order; None: the default."""
    if scopes is None:
        return DEFAULT_SCOPES
    given = scopes.replace(",", " ").split() if isinstance(scopes, str) else [s.strip() for s in scopes]
    unknown = sorted(set(given) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in given)


@dataclass(frozen=True)
class ApiKey:
    """One API key, without its secret."""

    id: str
    tenant: str
    scopes: tuple[str, ...]
    created_at: datetime
    name: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def allows(self, scope: str) -> bool:
        """True when the key carries ``scope`` (``admin`` carries every scope)."""
        return scope in self.scopes or "admin" in self.scopes

    def to_json(self) -> dict[str, Any]:
        """The key as the API and ``ingestd keys list --json`` show it (never the secret)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "tenant": self.tenant,
            "name": self.name,
            "scopes": list(self.scopes),
            "state": self.state(),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
        }


async def make_key(
    store: JobStore,
    tenant: str,
    *,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str | None = None,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for ``tenant`` (or register ``secret``, idempotently); the stored key and its secret. Here, not
    in ``ingestd.api.auth``, so that ``ingestd keys create`` does not import FastAPI."""
    if not tenant or len(tenant) > 200:
        raise errors.InvalidInput("a tenant name has 1 to 200 characters", field="tenant")
    if name is not None and len(name) > 200:
        raise errors.InvalidInput("a key name has at most 200 characters", field="name")
    if secret is not None and (not secret.startswith(SECRET_PREFIX) or len(secret) < 24):
        raise errors.InvalidInput(f"a key secret starts with {SECRET_PREFIX} and has at least 24 characters")
    secret = secret or new_secret()
    key = await store.add_api_key(hash_secret(secret), tenant, scopes=scopes, name=name, expires_at=expires_at)
    logger.info("api key %s for tenant %s (%s)", key.id, key.tenant, " ".join(key.scopes))
    return key, secret


__all__ = [
    "DEFAULT_SCOPES",
    "OPEN_TENANT",
    "SCOPES",
    "ApiKey",
    "hash_secret",
    "id_for_hash",
    "make_key",
    "new_id",
    "new_secret",
    "parse_scopes",
]
