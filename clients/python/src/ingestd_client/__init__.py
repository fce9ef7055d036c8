"""The Python client of the ingestd HTTP API, sync (``Client``) and async (``AsyncClient``), on httpx alone.

It imports nothing of the server (no store, worker, FastAPI or models)::

    from ingestd_client import Client, Linear

    with Client("http://127.0.0.1:8000", api_key="ik_...") as client:
        job = client.submit("audio", files=["talk.wav"], input={"language": "en"})
        job = client.wait(job.id, strategy=Linear(first=300, every=600), deadline=3600)
        print(client.result(job.id))
        print(client.memory.context("alice", "where does Emma live")["context"])

``submit`` sends an ``Idempotency-Key`` (generated unless given) and reuses it when it retries after a failed
connection or a 502/503/504, so a retry never creates a second job. ``events`` follows the Server-Sent Events
stream and resumes with ``Last-Event-ID`` after a dropped connection. ``wait`` polls with a strategy (the
server's ``Retry-After`` by default) or follows the event stream, always within a deadline. ``memory`` searches,
builds prompt context from, and deletes a user's memory. Webhook verification is ``ingestd_client.webhooks``
(the ``webhooks`` extra).
"""

from __future__ import annotations

from ingestd_client.aio import AsyncClient
from ingestd_client.errors import ApiError, WaitTimeout
from ingestd_client.memory import AsyncMemory, Memory
from ingestd_client.sync import Client
from ingestd_client.types import (
    BatchEntry,
    BatchJob,
    BatchResult,
    ClientEvent,
    Entity,
    Fact,
    FactEnd,
    Forgotten,
    MemoryContext,
    MemoryDeletion,
    MemorySearch,
    Message,
    RemoteJob,
)
from ingestd_client.waiting import EventStream, Exponential, Linear, ServerHint, WaitStrategy

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncMemory",
    "BatchEntry",
    "BatchJob",
    "BatchResult",
    "Client",
    "ClientEvent",
    "Entity",
    "EventStream",
    "Exponential",
    "Fact",
    "FactEnd",
    "Forgotten",
    "Linear",
    "Memory",
    "MemoryContext",
    "MemoryDeletion",
    "MemorySearch",
    "Message",
    "RemoteJob",
    "ServerHint",
    "WaitStrategy",
    "WaitTimeout",
]
