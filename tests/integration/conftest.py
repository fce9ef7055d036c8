"""The app through ``httpx.ASGITransport`` with a worker in the same event loop, on SQLite and PostgreSQL.

``api_factory(**settings)`` starts an app (running its lifespan: store, pipelines, worker) and gives an
``httpx.AsyncClient`` talking to it; ``api`` is one with the defaults. Settings are fast (short lease, quick
polls) so jobs of the ``demo`` pipeline finish in well under a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_support import ApiFactory
from workers import FAST_API

from ingestd.api.app import create_app
from ingestd.settings import Settings
from ingestd.store import open_store


@pytest.fixture
async def api_factory(database_url: str) -> AsyncIterator[ApiFactory]:
    """Start apps on the test database; each is stopped (worker, then store) after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(run_worker: bool = True, **overrides: Any) -> httpx.AsyncClient:
            settings = Settings(**{"database_url": database_url, **FAST_API, **overrides})
            store = await open_store(database_url, migrate=False)
            stack.push_async_callback(store.close)
            app = create_app(settings, store=store, run_worker=run_worker)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            client = httpx.AsyncClient(transport=transport, base_url="http://ingestd.test", timeout=30)
            stack.push_async_callback(client.aclose)
            client.app = app  # type: ignore[attr-defined]  # tests reach app.state.store through it
            return client

        yield start


@pytest.fixture
async def api(api_factory: ApiFactory) -> httpx.AsyncClient:
    """A client of an app running a worker, in open mode (no keys: tenant ``default``)."""
    return await api_factory()
