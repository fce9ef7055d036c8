"""A user's memory: ``client.memory.search``, ``.context`` and ``.delete`` (sync ``Memory``, async ``AsyncMemory``).

Memory is written by jobs of the ``memory`` pipeline (``client.submit("memory", {...})``); these read and delete it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import httpx

from ingestd_client import wire
from ingestd_client.types import MemoryContext, MemoryDeletion, MemorySearch


def _filters(
    as_of: datetime | str | None, since: datetime | str | None, until: datetime | str | None, speaker: str | None
) -> dict[str, Any]:
    return {"as_of": as_of, "since": since, "until": until, "speaker": speaker}


class Memory:
    """The memory endpoints through a sync ``httpx.Client``."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int = 10,
        as_of: datetime | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        speaker: str | None = None,
    ) -> MemorySearch:
        """Facts (current first), messages (best first) and entities matching ``query`` (``ApiError`` 404 when the
        user has no memory)."""
        params = wire.query(q=query, limit=limit, **_filters(as_of, since, until, speaker))
        return cast(MemorySearch, wire.json_of(self.http.get(wire.user_path(user_id, "search"), params=params)))

    def context(
        self,
        user_id: str,
        query: str,
        *,
        max_words: int | None = None,
        as_of: datetime | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        speaker: str | None = None,
    ) -> MemoryContext:
        """A compact block (``["context"]``) to paste into an LLM prompt, with what it shows."""
        params = wire.query(q=query, max_words=max_words, **_filters(as_of, since, until, speaker))
        return cast(MemoryContext, wire.json_of(self.http.get(wire.user_path(user_id, "context"), params=params)))

    def delete(self, user_id: str, *, session_id: str | None = None, message_id: str | None = None) -> MemoryDeletion:
        """Delete a user's whole memory, one session, or one message (and the facts only it stated)."""
        path = wire.memory_path(user_id, session_id, message_id)
        return cast(MemoryDeletion, wire.json_of(self.http.delete(path)))


class AsyncMemory:
    """The memory endpoints through an ``httpx.AsyncClient``: ``Memory``'s methods, awaited."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int = 10,
        as_of: datetime | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        speaker: str | None = None,
    ) -> MemorySearch:
        params = wire.query(q=query, limit=limit, **_filters(as_of, since, until, speaker))
        answer = await self.http.get(wire.user_path(user_id, "search"), params=params)
        return cast(MemorySearch, wire.json_of(answer))

    async def context(
        self,
        user_id: str,
        query: str,
        *,
        max_words: int | None = None,
        as_of: datetime | str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        speaker: str | None = None,
    ) -> MemoryContext:
        params = wire.query(q=query, max_words=max_words, **_filters(as_of, since, until, speaker))
        answer = await self.http.get(wire.user_path(user_id, "context"), params=params)
        return cast(MemoryContext, wire.json_of(answer))

    async def delete(
        self, user_id: str, *, session_id: str | None = None, message_id: str | None = None
    ) -> MemoryDeletion:
        path = wire.memory_path(user_id, session_id, message_id)
        return cast(MemoryDeletion, wire.json_of(await self.http.delete(path)))
