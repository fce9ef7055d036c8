"""``ingestd keys create|list|revoke``: API keys, straight on the database (``INGESTD_DATABASE_URL``).

The same operations over HTTP, for a key with the ``admin`` scope, are ``/v1/admin/keys`` (``admin_keys``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ingestd import keys
from ingestd.models import JobFilter

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

T = TypeVar("T")
Database = Annotated[
    str | None,
    typer.Option("--database", "-d", envvar="INGESTD_DATABASE_URL", help="sqlite:///path or postgresql://..."),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
keys_app = typer.Typer(help="Manage API keys: create, list, revoke.", no_args_is_help=True, rich_markup_mode=None)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _on_store(database: str | None, work: Callable[[JobStore], Awaitable[T]]) -> T:
    """Open (and migrate) the store, run ``work`` on it, close it. The database is all a key command needs: given
    (``--database``, or ``INGESTD_DATABASE_URL`` which typer reads), ``Settings`` is not built at all."""
    from ingestd.api.command_runtime import on_store, settings_from

    return on_store(database or settings_from().database_url, work)


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``12h``, ``30d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 15m, 12h or 30d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def _secret_from(variable: str | None) -> str | None:
    if variable is None:
        return None
    secret = os.environ.get(variable, "").strip()
    if not secret:
        raise typer.BadParameter(f"the environment variable {variable} is empty", param_hint="--secret-env")
    return secret


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="the tenant the key acts for")],
    scope: Annotated[
        list[str] | None, typer.Option(help=f"repeatable: {', '.join(keys.SCOPES)} (default: all but admin)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    expires_in: Annotated[str | None, typer.Option(help="expire after 3600, 15m, 12h, 30d...")] = None,
    secret_env: Annotated[
        str | None, typer.Option(help="register the secret in this environment variable (idempotent) instead")
    ] = None,
    database: Database = None,
    as_json: AsJson = False,
) -> None:
    """Create a key for TENANT and print its secret (stored hashed: the only time it is shown); with --secret-env,
    register a secret you chose and print only the key id."""
    try:
        scopes = keys.parse_scopes(scope or None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from exc
    expires_at = datetime.now(UTC) + parse_duration(expires_in) if expires_in else None
    given = _secret_from(secret_env)

    async def work(store: JobStore) -> tuple[keys.ApiKey, str, bool]:
        first = not await store.has_api_keys()
        keyless = (
            first
            and tenant != keys.OPEN_TENANT
            and bool((await store.list_jobs(JobFilter(tenant=keys.OPEN_TENANT), limit=1)).jobs)
        )
        key, secret = await keys.make_key(store, tenant, scopes=scopes, name=name, expires_at=expires_at, secret=given)
        return key, secret, keyless

    key, secret, keyless = _on_store(database, work)
    shown = None if given else secret
    if as_json:
        typer.echo(json.dumps({**key.to_json(), "secret": shown}, indent=2))
        return
    typer.echo(f"key {key.id} for tenant {key.tenant}: {' '.join(key.scopes)}", err=True)
    if keyless:  # the jobs submitted in open mode would otherwise seem to vanish from this key's listing
        typer.echo(
            f"note: the jobs submitted before any key existed belong to tenant '{keys.OPEN_TENANT}'; this key "
            f"does not list them: `ingestd keys create --tenant {keys.OPEN_TENANT}` makes one that does",
            err=True,
        )
    typer.echo(shown if shown is not None else key.id)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    database: Database = None,
    as_json: AsJson = False,
) -> None:
    """List keys (ids, tenants, scopes, state; never secrets)."""

    async def work(store: JobStore) -> list[keys.ApiKey]:
        return await store.list_api_keys(tenant)

    found = _on_store(database, work)
    if as_json:
        typer.echo(json.dumps({"keys": [k.to_json() for k in found]}, indent=2))
        return
    typer.echo(f"{'id':<21} {'tenant':<16} {'state':<8} {'expires':<20} {'name':<16} scopes")
    for key in found:
        expires = key.expires_at.strftime("%Y-%m-%d %H:%M:%S") if key.expires_at else "-"
        typer.echo(
            f"{key.id:<21} {key.tenant:<16} {key.state():<8} {expires:<20} {key.name or '-':<16} {' '.join(key.scopes)}"
        )


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id (key_...), from `ingestd keys list`")],
    database: Database = None,
) -> None:
    """Revoke a key: every API process refuses it within a few seconds (idempotent)."""

    async def work(store: JobStore) -> keys.ApiKey | None:
        return await store.revoke_api_key(key_id)

    key = _on_store(database, work)
    if key is None:
        typer.echo(f"error: no API key {key_id!r} (`ingestd keys list` shows them)", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key.id} (tenant {key.tenant})")


__all__ = ["keys_app", "parse_duration"]
