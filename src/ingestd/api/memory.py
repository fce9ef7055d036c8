"""The memory read API: search a user's knowledge graph, read an entity's history, build a prompt block.

``GET /v1/memory/{user_id}/search?q=`` (messages and facts: full text, embeddings and the graph, fused),
``GET /v1/memory/{user_id}/entities/{entity_id}`` (the entity and its facts over time) and
``GET /v1/memory/{user_id}/context?q=&max_words=`` (a memory block to paste into an LLM prompt, in at most
``max_words`` words: the messages that answer, with speaker and date, and a few facts).

Graphs are per tenant (the API key's) and user: another tenant's user, like an unknown one, is a 404. Queries are
embedded by the same embedder the memory pipeline writes with, so query and fact vectors are comparable; when
that embedder fails (a hosted endpoint down), search falls back to full text and says so (``vector_search``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import PlainTextResponse

from ingestd import errors
from ingestd.api.auth import current_tenant
from ingestd.models import JSON
from ingestd.pipelines.memory.graph import GraphStore, Scope, open_graph_store


def _lazy(name: str) -> ModuleType:
    """The module ``name``, imported when one of its attributes is first read (``importlib.util.LazyLoader``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The memory pipeline's search, recall and run (numpy, numkong) are imported by the first request that needs them,
# so an API process starts without them (tests/architecture/test_start_imports.py).
if TYPE_CHECKING:
    from ingestd.pipelines.memory import recall
    from ingestd.pipelines.memory.retrieve import Filters, Recall
    from ingestd.pipelines.memory.run import MemoryRun
    from ingestd.providers.base import Embedder
    from ingestd.settings import Settings
else:
    recall = _lazy("ingestd.pipelines.memory.recall")  # the answers' JSON: imported by the first answer

log = logging.getLogger("ingestd.api.memory")
CONTEXT_WORDS = 400  # the default size of a context block: recall.CONTEXT_WORDS (a test checks they agree)

_USER_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"  # as the memory pipeline's input accepts it
UserId = Annotated[str, Path(min_length=1, max_length=200, pattern=_USER_ID, description="The user whose memory")]
Tenant = Annotated[str, Depends(current_tenant)]
QueryText = Annotated[str, Query(min_length=1, max_length=2000, description="What to recall, in words")]


class _MemoryState:
    """The graph store (opened on first use, closed with the app) and the query embedder of one app."""

    def __init__(self) -> None:
        self.graph: GraphStore | None = None
        self.embedder: Embedder | None = None
        self.own_providers: MemoryRun | None = None  # built here (not the pipeline's): closed with the app
        self.lock = asyncio.Lock()

    async def close(self) -> None:
        if self.graph is not None:
            await self.graph.close()
            self.graph = None
        if self.own_providers is not None:
            await self.own_providers.aclose()
            self.own_providers = None


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = _MemoryState()
    app.state.memory = state
    try:
        yield
    finally:
        await state.close()


router = APIRouter(prefix="/v1/memory", tags=["memory"], lifespan=_lifespan)


def _state(request: Request) -> _MemoryState:
    state = getattr(request.app.state, "memory", None)
    if state is None:  # an app whose lifespan did not run this router's (tests that skip lifespans)
        state = request.app.state.memory = _MemoryState()
    return state


async def _graph(request: Request) -> GraphStore:
    """The memory pipeline's own graph when this app runs the pipeline (one graph per process: one pool, one
    vector cache), else one opened here on first use."""
    owner = _memory_run(request)
    if owner is not None:
        return await owner.graph()
    state = _state(request)
    async with state.lock:
        if state.graph is None:
            settings: Settings = request.app.state.settings
            state.graph = await open_graph_store(settings.database_url)
        return state.graph


def _memory_run(request: Request) -> MemoryRun | None:
    """The ``MemoryRun`` of the memory pipeline this app runs, if it runs one."""
    from ingestd.pipelines.memory.run import MemoryRun

    pipeline = (getattr(request.app.state, "pipelines", None) or {}).get("memory")
    owner: Any = getattr(pipeline.run, "__self__", None) if pipeline is not None else None
    return owner if isinstance(owner, MemoryRun) else None


def _embedder(request: Request) -> Embedder:
    """The memory pipeline's own embedder when this app runs it, else one built from the settings."""
    state = _state(request)
    if state.embedder is None:
        from ingestd.pipelines.memory.run import MemoryRun

        owner = _memory_run(request)
        if owner is None:
            owner = state.own_providers = MemoryRun(request.app.state.settings)
        state.embedder = owner.providers.embedder
    return state.embedder


async def _known_user(request: Request, scope: Scope) -> GraphStore:
    graph = await _graph(request)
    if not await graph.user_exists(scope):
        raise errors.NotFound(f"no memory for user {scope.user_id!r}", user_id=scope.user_id)
    return graph


async def _query_vector(request: Request, query: str) -> list[float] | None:
    try:
        answer = await _embedder(request).embed([query])
    except errors.IngestdError as exc:
        # Full text still answers; a recall that degrades beats a 503 in the middle of a conversation.
        log.warning("memory search without vectors: the embedder failed: %s", exc)
        return None
    return answer.vectors[0] if answer.vectors else None


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _filters(
    as_of: Annotated[datetime | None, Query(description="Facts that held then; messages said by then")] = None,
    since: Annotated[datetime | None, Query(description="Messages said, facts holding from, at or after")] = None,
    until: Annotated[datetime | None, Query(description="Messages said, facts holding from, at or before")] = None,
    speaker: Annotated[str | None, Query(min_length=1, max_length=100, description="Messages by, facts about")] = None,
) -> Filters:
    from ingestd.pipelines.memory.retrieve import Filters

    return Filters(_utc(as_of), _utc(since), _utc(until), speaker)


Filtered = Annotated[Any, Depends(_filters)]  # Filters, not imported at start


async def _recall(request: Request, scope: Scope, query: str, limit: int, filters: Filters) -> tuple[Recall, bool]:
    from ingestd.pipelines.memory.retrieve import named_speakers, vector_text
    from ingestd.pipelines.memory.retrieve import recall as recall_for

    graph = await _graph(request)
    exists, speakers = await asyncio.gather(graph.user_exists(scope), graph.speakers(scope))  # one wait, not two
    if not exists:
        raise errors.NotFound(f"no memory for user {scope.user_id!r}", user_id=scope.user_id)
    named = named_speakers(query, speakers)
    vector = await _query_vector(request, vector_text(query, named))
    return await recall_for(graph, scope, query, vector, limit, filters, named, speakers), vector is not None


@router.get("/{user_id}/search", summary="Search a user's memory (full text + embeddings, current facts first)")
async def search_memory(
    request: Request,
    tenant: Tenant,
    user_id: UserId,
    q: QueryText,
    filters: Filtered,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSON:
    found, vector_search = await _recall(request, Scope(tenant, user_id), q, limit, filters)
    return recall.recall_json(user_id, q, found, vector_search, limit)


@router.get("/{user_id}/entities/{entity_id}", summary="One entity of a user's memory with its facts over time")
async def get_memory_entity(
    request: Request,
    tenant: Tenant,
    user_id: UserId,
    entity_id: Annotated[str, Path(min_length=1, max_length=300)],
) -> JSON:
    scope = Scope(tenant, user_id)
    graph = await _graph(request)
    entity = await graph.get_entity(scope, entity_id)
    if entity is None:
        raise errors.NotFound(f"no entity {entity_id!r} in the memory of user {user_id!r}", entity_id=entity_id)
    facts = await graph.entity_facts(scope, entity_id)
    return recall.entity_with_facts_json(user_id, entity, facts)


@router.get(
    "/{user_id}/context",
    summary="A compact memory block to paste into an LLM prompt",
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
async def memory_context(
    request: Request,
    tenant: Tenant,
    user_id: UserId,
    q: QueryText,
    filters: Filtered,
    max_words: Annotated[int, Query(ge=20, le=4000, description="The block's size limit in words")] = CONTEXT_WORDS,
    format: Annotated[str, Query(pattern="^(json|text)$", description="json (default) or text")] = "json",
) -> Any:
    found, _ = await _recall(request, Scope(tenant, user_id), q, 10, filters)
    body = recall.context_json(user_id, q, found, max_words)
    if format == "text":
        return PlainTextResponse(body["context"])
    return body


Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many")]
Offset = Annotated[int, Query(ge=0, description="Skip this many")]


@router.get("/{user_id}/sessions", summary="A user's sessions in memory, the most recent first")
async def list_memory_sessions(
    request: Request, tenant: Tenant, user_id: UserId, limit: Limit = 100, offset: Offset = 0
) -> JSON:
    scope = Scope(tenant, user_id)
    sessions = await (await _known_user(request, scope)).sessions(scope, limit, offset)
    return {"user_id": user_id, "sessions": [recall.session_json(s) for s in sessions], "offset": offset}


@router.get("/{user_id}/messages", summary="A user's messages in memory (one session's, or all), oldest first")
async def list_memory_messages(
    request: Request,
    tenant: Tenant,
    user_id: UserId,
    session_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSON:
    scope = Scope(tenant, user_id)
    messages = await (await _known_user(request, scope)).list_messages(scope, session_id, limit, offset)
    return {"user_id": user_id, "messages": [recall.message_json(m) for m in messages], "offset": offset}


async def _forget(request: Request, scope: Scope, **what: str) -> JSON:
    forgotten = await (await _known_user(request, scope)).forget(scope, **what)
    return {"user_id": scope.user_id, **what, "deleted": recall.forgotten_json(forgotten)}


@router.delete("/{user_id}", summary="Delete a user's whole memory")
async def delete_memory(request: Request, tenant: Tenant, user_id: UserId) -> JSON:
    return await _forget(request, Scope(tenant, user_id))


@router.delete("/{user_id}/sessions/{session_id}", summary="Delete one session and the facts only it stated")
async def delete_memory_session(
    request: Request, tenant: Tenant, user_id: UserId, session_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> JSON:
    return await _forget(request, Scope(tenant, user_id), session_id=session_id)


@router.delete("/{user_id}/messages/{message_id}", summary="Delete one message and the facts only it stated")
async def delete_memory_message(
    request: Request, tenant: Tenant, user_id: UserId, message_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> JSON:
    return await _forget(request, Scope(tenant, user_id), message_id=message_id)
