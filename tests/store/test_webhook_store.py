"""The ``WebhookStore`` contract: secrets, endpoints, and the outbox that ``finish`` fills (every backend)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import cast

from ingestd.models import JobStatus, NewJob, utcnow
from ingestd.store.protocol import JobStore, WebhookStore

HOOK = "https://hooks.example.com/ingestd"


def _hooks(store: JobStore) -> WebhookStore:
    assert isinstance(store, WebhookStore)
    return cast(WebhookStore, store)


async def _finished(store: JobStore, status: JobStatus = JobStatus.SUCCEEDED, **fields: object) -> str:
    job_id = (await store.submit(NewJob("demo", {}, tenant="acme", **fields))).job.id  # type: ignore[arg-type]
    await store.claim_jobs("w", pipelines=None, limit=1, lease_seconds=30)
    assert await store.finish(job_id, "w", status)
    return job_id


async def test_secret_is_stable_until_rotated(store: JobStore) -> None:
    hooks = _hooks(store)
    first = await hooks.webhook_secret("acme")
    assert first.startswith("whsec_") and await hooks.webhook_secret("acme") == first
    assert await hooks.webhook_secret("other") != first
    rotated = await hooks.webhook_secret("acme", rotate=True)
    assert rotated != first and await hooks.webhook_secret("acme") == rotated
    same = await asyncio.gather(*(hooks.webhook_secret("fresh") for _ in range(8)))
    assert len(set(same)) == 1  # concurrent first uses agree on one secret


async def test_endpoints_per_tenant(store: JobStore) -> None:
    hooks = _hooks(store)
    made = await hooks.add_webhook_endpoint("acme", HOOK)
    assert made["url"] == HOOK and made["id"] and made["created_at"]
    await hooks.add_webhook_endpoint("other", HOOK + "/other")
    assert await hooks.list_webhook_endpoints("acme") == [made]
    assert not await hooks.delete_webhook_endpoint("other", made["id"])  # not theirs
    assert await hooks.delete_webhook_endpoint("acme", made["id"])
    assert await hooks.list_webhook_endpoints("acme") == []
    assert not await hooks.delete_webhook_endpoint("acme", made["id"])


async def test_finish_queues_one_message_and_claims_lease_it(store: JobStore) -> None:
    hooks = _hooks(store)
    job_id = await _finished(store, JobStatus.PARTIAL, webhook_url=HOOK)
    assert await hooks.claim_webhooks("quiet", limit=5, lease_seconds=30) != []
    await _finished(store)  # no webhook_url: no message
    assert await hooks.claim_webhooks("d2", limit=5, lease_seconds=30) == []  # leased by "quiet"
    [pending] = await hooks.webhook_deliveries(job_id)
    assert pending["url"] == HOOK and pending["status"] == "pending" and pending["attempts"] == 0


async def test_delivery_retry_and_give_up(store: JobStore) -> None:
    hooks = _hooks(store)
    job_id = await _finished(store, webhook_url=HOOK)
    [message] = await hooks.claim_webhooks("d1", limit=5, lease_seconds=30)
    assert message.job_id == job_id and message.url == HOOK and message.attempts == 0
    assert message.payload["type"] == "job.finished"
    assert message.payload["data"] == {"id": job_id, "tenant": "acme", "pipeline": "demo", "status": "succeeded"}

    later = utcnow() + timedelta(hours=1)
    assert not await hooks.record_webhook_attempt(message.id, "d2", error="500", next_attempt_at=later)  # not its
    assert await hooks.record_webhook_attempt(message.id, "d1", error="HTTP 500", next_attempt_at=later)
    assert await hooks.claim_webhooks("d2", limit=5, lease_seconds=30) == []  # not due for an hour
    [retrying] = await hooks.webhook_deliveries(job_id)
    assert retrying["status"] == "pending" and retrying["attempts"] == 1 and retrying["last_error"] == "HTTP 500"
    assert retrying["next_attempt_at"] is not None

    soon = utcnow() - timedelta(seconds=1)
    other = await _finished(store, JobStatus.FAILED, webhook_url=HOOK)
    await hooks.record_webhook_attempt(message.id, "d1", error="again", next_attempt_at=soon)  # lease gone: no-op
    [due] = await hooks.claim_webhooks("d3", limit=5, lease_seconds=30)
    assert due.job_id == other
    assert await hooks.record_webhook_attempt(due.id, "d3", error="HTTP 410", next_attempt_at=None)
    assert (await hooks.webhook_deliveries(other))[0]["status"] == "failed"


async def test_delivered_messages_are_done(store: JobStore) -> None:
    hooks = _hooks(store)
    job_id = await _finished(store, webhook_url=HOOK)
    [message] = await hooks.claim_webhooks("d1", limit=5, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [again] = await hooks.claim_webhooks("d2", limit=5, lease_seconds=30)  # d1's lease ran out: d2 takes over
    assert again.id == message.id
    assert not await hooks.record_webhook_attempt(message.id, "d1", error=None, next_attempt_at=None)
    assert await hooks.record_webhook_attempt(again.id, "d2", error=None, next_attempt_at=None)
    [delivered] = await hooks.webhook_deliveries(job_id)
    assert delivered["status"] == "delivered" and delivered["delivered_at"] and delivered["attempts"] == 1
    assert await hooks.claim_webhooks("d3", limit=5, lease_seconds=30) == []


async def test_finish_notifies_the_jobs_url_then_each_tenant_endpoint_once(store: JobStore) -> None:
    hooks = _hooks(store)
    await hooks.add_webhook_endpoint("acme", HOOK)  # the same URL as the job's own: notified once
    second = await hooks.add_webhook_endpoint("acme", HOOK + "/second")
    await hooks.add_webhook_endpoint("someone-else", HOOK + "/theirs")
    job_id = await _finished(store, webhook_url=HOOK)
    assert [d["url"] for d in await hooks.webhook_deliveries(job_id)] == [HOOK, second["url"]]
    bare = await _finished(store)  # no URL of its own: the tenant's endpoints still hear of it
    assert sorted(d["url"] for d in await hooks.webhook_deliveries(bare)) == [HOOK, second["url"]]
    messages = await hooks.claim_webhooks("d", limit=10, lease_seconds=30)
    assert len(messages) == 4 and len({m.id for m in messages}) == 4
