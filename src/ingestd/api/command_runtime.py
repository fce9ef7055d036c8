"""What every ``ingestd`` command runs on: its ``Settings`` (the environment, with the command line's options on
top) and its event loop. Here, under the commands of ``ingestd.cli`` and ``ingestd.api.commands`` alike, so that
neither imports the other to get them.

Imports that only some commands need (pydantic-settings, asyncio, the store) happen inside the functions, so
``ingestd --help`` and a key command given ``--database`` start without them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ingestd.settings import Settings
    from ingestd.store.protocol import JobStore

T = TypeVar("T")


def settings_from(**overrides: Any) -> Settings:
    """``Settings`` from the environment, with the options given on the command line on top."""
    from ingestd.settings import Settings

    base = Settings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=given) if given else base


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when installed (faster claim/finish round trips), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        import asyncio

        return asyncio.run(make())  # type: ignore[arg-type]
    return uvloop.run(make())  # type: ignore[arg-type]


def on_store(database_url: str, work: Callable[[JobStore], Awaitable[T]]) -> T:
    """Open the store at ``database_url`` (creating the SQLite folder, ``./var/`` by default), migrate it, run
    ``work`` on it and close it."""
    from ingestd.store import open_store, sqlite_path

    if database_url.startswith("sqlite:///"):
        Path(sqlite_path(database_url)).parent.mkdir(parents=True, exist_ok=True)

    async def go() -> T:
        store = await open_store(database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return run_async(go)
