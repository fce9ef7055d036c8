"""Webhook delivery: the outbox that a job's events fill, sent per Standard Webhooks, with retries for up to 24 h.

Event types: ``job.succeeded``, ``job.partial``, ``job.failed``, ``job.canceled`` (a job's own ``webhook_url``
gets these four; a tenant's endpoint those it subscribed to) and the opt-in ``job.progress``. A notification is
written to ``webhook_outbox`` in the same transaction as its event (``store.finish``, ``store.set_progress``),
one row per target URL, so a crash between commit and delivery loses nothing. Every worker process runs a
``Dispatcher`` (``Settings.webhook_dispatch``) that claims due rows with a lease (no other worker sends them
meanwhile), signs each (``webhook-id``, the same on every retry so receivers can drop duplicates;
``webhook-timestamp``; ``webhook-signature`` = ``v1,<HMAC-SHA256>``, and during a secret rotation's overlap a
second ``v1,<...>`` made with the previous secret, space-separated, so a receiver holding either secret accepts)
and POSTs it. A 2xx answer marks it delivered; anything else is retried with exponential backoff and jitter
until ``Settings.webhook_retry_hours`` after the event (or after a redelivery request), then it is given up.
Attempts and the last error are visible at ``GET /v1/jobs/{id}/webhooks``; ``POST
/v1/webhooks/deliveries/{id}/redeliver`` sends one again.

Server-side request forgery: a target is resolved, and refused when any address it resolves to is loopback,
private, link-local (cloud metadata lives there), shared, reserved or multicast, unless the operator allows
the host name (``webhook_allow_hosts``) or the address (``webhook_allow_networks``). The request then goes to
the address that was checked (the ``Host`` header and TLS server name stay the URL's), so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks.webhooks import Webhook

from ingestd import errors, ssrf
from ingestd.models import WebhookMessage, utcnow
from ingestd.settings import Settings
from ingestd.store.protocol import WebhookStore

log = logging.getLogger("ingestd.webhooks")

MAX_BACKOFF_SECONDS = 3600.0
CLAIM_BATCH = 16
MIN_POLL_SECONDS = 0.5
GIVE_UP_STATUSES = frozenset({410})  # "gone": the receiver asks us to stop

# The server-side request forgery guard lives in ``ingestd.ssrf`` (source URLs use it too); re-exported here.
embedded_ipv4 = ssrf.embedded_ipv4
refusal_reason = ssrf.refusal_reason
Target = ssrf.Target


async def check_target(url: str, settings: Settings) -> Target:
    """Resolve ``url`` and check every address it resolves to; raise ``WebhookTargetRefused`` (422) saying why.

    An allow-listed host name (``webhook_allow_hosts``) passes whatever it resolves to; otherwise each address
    must be public or inside ``webhook_allow_networks``.
    """
    try:
        return await ssrf.check_url(
            url,
            allow_hosts=settings.webhook_allow_hosts,
            allow_networks=settings.webhook_allow_networks,
            what="webhook",
        )
    except ssrf.Refused as exc:
        raise errors.WebhookTargetRefused(str(exc), **exc.fields) from exc


# --- signing ---------------------------------------------------------------------------------
def signed_headers(
    secrets: str | Sequence[str], message_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed over ``id.timestamp.body`` with each of ``secrets``
    (the current one first; during a rotation's overlap also the previous one), space-separated."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(Webhook(key).sign(message_id, when, body) for key in keys),
        "content-type": "application/json",
        "user-agent": "ingestd-webhooks/1",
    }


def body_of(message: WebhookMessage) -> str:
    """The exact bytes signed and sent (compact JSON)."""
    return json.dumps(message.payload, separators=(",", ":"), sort_keys=True)


def next_attempt(message: WebhookMessage, settings: Settings, now: datetime) -> datetime | None:
    """When to try again after ``message.attempts + 1`` failed attempts (full jitter over an exponentially
    growing cap), or None once ``webhook_retry_hours`` have passed since the message was written."""
    failures = message.attempts + 1
    cap = min(MAX_BACKOFF_SECONDS, settings.webhook_retry_base_seconds * 2 ** (failures - 1))
    when = now + timedelta(seconds=random.uniform(cap / 2, cap))
    give_up_at = message.created_at + timedelta(hours=settings.webhook_retry_hours)
    return None if when > give_up_at else when


# --- delivery --------------------------------------------------------------------------------
class Dispatcher:
    """Claims due outbox messages and delivers them; one per worker process (``start`` / ``stop``).

    Args:
        store: a store implementing ``WebhookStore``.
        settings: timeouts, retry window, allow-lists, poll interval.
        worker_id: the lease owner of claimed messages.
    """

    def __init__(self, store: WebhookStore, settings: Settings, worker_id: str) -> None:
        self._store = store
        self._settings = settings
        self._worker_id = worker_id
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.delivered = 0  # for tests and logs
        self.failed_attempts = 0

    def start(self) -> None:
        """Run the delivery loop in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"webhooks {self._worker_id}")

    async def stop(self) -> None:
        """Stop the loop; a message being sent is left to its lease (it is sent again later, same id)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Deliver due messages until cancelled, polling every ``poll_seconds`` (at least 0.5 s) when idle."""
        async with httpx.AsyncClient(timeout=self._settings.webhook_timeout_seconds, follow_redirects=False) as c:
            self._client = c
            while True:
                try:
                    sent = await self.deliver_due()
                except errors.StoreError as exc:
                    log.warning("webhooks: claiming failed: %s", exc)
                    sent = 0
                except Exception:  # a bug must not stop deliveries for the life of the process
                    log.exception("webhooks: delivery round failed")
                    sent = 0
                if sent < CLAIM_BATCH:  # at most two claims a second: each is a write transaction
                    await asyncio.sleep(max(self._settings.poll_seconds, MIN_POLL_SECONDS))

    async def deliver_due(self) -> int:
        """Claim one batch of due messages and attempt each (concurrently); returns how many were claimed."""
        # Longer than one attempt can take (resolution, connect, send, read); a killed worker's messages are
        # sent by another worker after it.
        lease = 3 * self._settings.webhook_timeout_seconds + self._settings.lease_seconds
        messages = await self._store.claim_webhooks(self._worker_id, limit=CLAIM_BATCH, lease_seconds=lease)
        if messages:
            await asyncio.gather(*(self._attempt(m) for m in messages))
        return len(messages)

    async def _attempt(self, message: WebhookMessage) -> None:
        try:
            error, final = await self._send(message)
        except errors.StoreError as exc:  # the secret could not be read: the lease expires, another try later
            log.warning("webhook %s: %s", message.id, exc)
            return
        except Exception as exc:  # anything else about this message is its error, retried like a failure
            error, final = f"{type(exc).__name__}: {exc}"[:500], False
        now = utcnow()
        retry_at = None if error is None or final else next_attempt(message, self._settings, now)
        if error is None:
            self.delivered += 1
        else:
            self.failed_attempts += 1
            level = logging.WARNING if retry_at is None else logging.INFO
            log.log(level, "webhook %s to %s: %s%s", message.id, message.url, error, "" if retry_at else " (gave up)")
        with contextlib.suppress(errors.StoreError):  # the lease expires and the message is sent again
            await self._store.record_webhook_attempt(message.id, self._worker_id, error=error, next_attempt_at=retry_at)

    async def _send(self, message: WebhookMessage) -> tuple[str | None, bool]:
        """Send once: ``(None, _)`` when delivered, else ``(error, final)`` (final: do not retry)."""
        try:
            target = await check_target(message.url, self._settings)
        except errors.WebhookTargetRefused as exc:
            return exc.detail, True
        secrets = await self._store.webhook_signing_secrets(message.tenant)
        body = body_of(message)
        headers = signed_headers(secrets, message.id, body) | {"host": target.host_header()}
        assert self._client is not None
        try:
            response = await self._client.post(
                target.pinned_url(), content=body, headers=headers, extensions={"sni_hostname": target.host}
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__, False
        if 200 <= response.status_code < 300:
            return None, False
        snippet = response.text[:200].strip()
        error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
        return error, response.status_code in GIVE_UP_STATUSES


def dispatcher_for(store: object, settings: Settings, worker_id: str) -> Dispatcher | None:
    """A dispatcher when ``webhook_dispatch`` is on and the store keeps an outbox, else None."""
    if not settings.webhook_dispatch or not isinstance(store, WebhookStore):
        return None
    return Dispatcher(store, settings, worker_id)


__all__ = [
    "Dispatcher",
    "Target",
    "body_of",
    "check_target",
    "dispatcher_for",
    "next_attempt",
    "refusal_reason",
    "signed_headers",
]
