"""``GET /v1/jobs/{id}/events``: a job's events as Server-Sent Events.

Each event is sent as ``id: <seq>``, ``event: <type>``, ``data: <json>``. A client resumes after a dropped
connection with ``Last-Event-ID`` (or ``?after=N``) and receives every later event exactly once, because
sequence numbers have no gaps and are read from the store, not from memory. Waiting uses
``store.wait_for_events``, which wakes on commits from any process, so an API process streams events that a
worker elsewhere writes. Idle streams get a ``: keep-alive`` comment; the stream ends after ``job.finished`` (the
last one: a retried job's stream goes on into its next attempt).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from ingestd import errors
from ingestd.api.auth import current_tenant
from ingestd.models import Event, EventType

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
RETRY_MS = 1000  # tells EventSource clients how soon to reconnect
MAX_SEQ = 2**63 - 1  # sequence numbers are BIGINT: a larger cursor cannot name an event


def format_event(event: Event) -> bytes:
    data = {"seq": event.seq, "type": event.type, "at": event.at.isoformat(), "data": event.data}
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.type.encode(), orjson.dumps(data))


async def stream_events(
    store: JobStore, job_id: str, tenant: str, after: int, keepalive: float
) -> AsyncIterator[bytes]:
    """Events after ``after`` until the terminal one; ends early if the job is deleted."""
    yield b"retry: %d\n\n" % RETRY_MS
    while True:
        batch = await store.read_events(job_id, after=after, limit=500)
        for event in batch:
            yield format_event(event)
            after = event.seq
            if event.type == EventType.JOB_FINISHED and await _last_attempt_over(store, job_id, tenant, after):
                return
        if batch:
            continue
        job = await store.get_job(job_id, tenant)
        if job is None or (job.terminal and not await store.read_events(job_id, after=after, limit=1)):
            return  # deleted, or resumed after the last event of a finished job: nothing more will come
        if not await store.wait_for_events(job_id, after, timeout=keepalive):
            yield b": keep-alive\n\n"


async def _last_attempt_over(store: JobStore, job_id: str, tenant: str, after: int) -> bool:
    """At a ``job.finished``: the stream ends, unless the job was retried since (a later attempt follows)."""
    job = await store.get_job(job_id, tenant)
    return job is None or (job.terminal and not await store.read_events(job_id, after=after, limit=1))


def _start_after(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None:
        try:
            seq = max(0, int(last_event_id.strip()))
        except ValueError as exc:
            raise errors.BadRequest("Last-Event-ID must be an event sequence number") from exc
        if seq > MAX_SEQ:
            raise errors.BadRequest(f"Last-Event-ID must be at most {MAX_SEQ}")
        return seq
    return after or 0


@router.get(
    "/{job_id}/events",
    summary="The job's events as Server-Sent Events (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def job_events(
    request: Request,
    job_id: str,
    tenant: Annotated[str, Depends(current_tenant)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Send events with a sequence number above this")
    ] = None,
) -> StreamingResponse:
    store: JobStore = request.app.state.store
    start = _start_after(last_event_id, after)
    if await store.get_job(job_id, tenant) is None:
        raise errors.NotFound(f"no job {job_id!r}")
    keepalive = request.app.state.settings.sse_keepalive_seconds
    return StreamingResponse(
        stream_events(store, job_id, tenant, start, keepalive),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
