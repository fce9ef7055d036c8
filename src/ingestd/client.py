"""The Python client, re-exported: it lives in its own distribution, ``ingestd-client`` (``clients/python``,
httpx as its only dependency), which the server depends on. ``from ingestd.client import Client`` keeps working;
applications that need only the client install ``clients/python`` and import ``ingestd_client``.
"""

from __future__ import annotations

from ingestd_client import (
    ApiError,
    AsyncClient,
    Client,
    ClientEvent,
    EventStream,
    Exponential,
    Linear,
    RemoteJob,
    ServerHint,
    WaitStrategy,
    WaitTimeout,
)
from ingestd_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientEvent",
    "EventStream",
    "Exponential",
    "Linear",
    "RemoteJob",
    "ServerHint",
    "WaitStrategy",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]
