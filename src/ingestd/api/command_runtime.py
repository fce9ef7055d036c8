"""What every ``ingestd`` command runs on: its ``Settings`` (the environment, with the command line's options on
top) and its event loop. Here, under the commands of ``ingestd.cli`` and ``ingestd.api.commands`` alike, so that
neither imports the other to get them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ingestd.settings import Settings

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

T = TypeVar("T")


def settings_from(**overrides: Any) -> Settings:
    """``Settings`` from the environment, with the options given on the command line on top."""
    base = Settings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=given) if given else base


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when installed (faster claim/finish round trips), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(make())  # type: ignore[arg-type]
    return uvloop.run(make())  # type: ignore[arg-type]


def on_store(settings: Settings, work: Callable[[JobStore], Awaitable[T]]) -> T:
    """Open the store of ``settings`` (creating the SQLite folder, ``./var/`` by default), migrate it, run ``work``
    on it and close it."""
    from ingestd.store import open_store, sqlite_path

    if settings.database_url.startswith("sqlite:///"):
        Path(sqlite_path(settings.database_url)).parent.mkdir(parents=True, exist_ok=True)

    async def go() -> T:
        store = await open_store(settings.database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    return run_async(go)
