"""The ``WebhookStore`` contract: secrets, endpoints, and the outbox that ``finish`` fills (every backend)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import cast

from ingestd.models import JobStatus, NewJob, Progress, utcnow
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
    assert made["event_types"] == ["job.succeeded", "job.partial", "job.failed", "job.canceled"]
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
    assert message.payload["type"] == message.event_type == "job.succeeded"
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


async def test_endpoints_get_only_the_event_types_they_subscribed_to(store: JobStore) -> None:
    hooks = _hooks(store)
    failures = await hooks.add_webhook_endpoint("acme", HOOK + "/failures", ["job.failed"])
    everything = await hooks.add_webhook_endpoint("acme", HOOK + "/all")
    assert failures["event_types"] == ["job.failed"]
    ok = await _finished(store)
    bad = await _finished(store, JobStatus.FAILED)
    assert [(d["url"], d["event_type"]) for d in await hooks.webhook_deliveries(ok)] == [
        (everything["url"], "job.succeeded")
    ]
    assert sorted((d["url"], d["event_type"]) for d in await hooks.webhook_deliveries(bad)) == [
        (HOOK + "/all", "job.failed"),
        (HOOK + "/failures", "job.failed"),
    ]
    changed = await hooks.set_webhook_endpoint_events("acme", failures["id"], ["job.succeeded", "job.failed"])
    assert changed is not None and changed["event_types"] == ["job.succeeded", "job.failed"]
    assert await hooks.set_webhook_endpoint_events("other", failures["id"], ["job.failed"]) is None  # not theirs
    assert len(await hooks.webhook_deliveries(await _finished(store))) == 2


async def test_progress_messages_are_coalesced_and_dropped_when_the_job_ends(store: JobStore) -> None:
    hooks = _hooks(store)
    await hooks.add_webhook_endpoint("acme", HOOK + "/progress", ["job.progress"])
    job_id = (await store.submit(NewJob("demo", {}, tenant="acme"))).job.id
    await store.claim_jobs("w", pipelines=None, limit=1, lease_seconds=30)
    await store.set_progress(job_id, "w", Progress("transcribe", 1, 4))
    await store.set_progress(job_id, "w", Progress("transcribe", 2, 4))
    [waiting] = await hooks.claim_webhooks("d", limit=5, lease_seconds=30)  # one message, the latest count
    assert waiting.event_type == "job.progress"
    assert waiting.payload["data"]["progress"] == {"stage": "transcribe", "done": 2, "total": 4}
    assert waiting.payload["data"]["status"] == "running"
    await store.set_progress(job_id, "w", Progress("transcribe", 3, 4))  # the first is being sent: a second
    assert len(await hooks.webhook_deliveries(job_id)) == 2
    assert await store.finish(job_id, "w", JobStatus.SUCCEEDED)  # no endpoint wants job.succeeded
    [kept] = await hooks.webhook_deliveries(job_id)  # the waiting one is dropped, the one in flight is not
    assert kept["id"] == waiting.id


async def test_a_rotated_secret_signs_next_to_the_new_one_until_its_overlap_ends(store: JobStore) -> None:
    hooks = _hooks(store)
    first = await hooks.webhook_secret("acme")
    assert await hooks.webhook_signing_secrets("acme") == [first]
    rotated = await hooks.rotate_webhook_secret("acme", overlap_seconds=3600)
    assert rotated["secret"] != first and rotated["previous_expires_at"] is not None
    assert await hooks.webhook_signing_secrets("acme") == [rotated["secret"], first]
    assert (await hooks.webhook_secret_info("acme"))["previous_expires_at"] == rotated["previous_expires_at"]
    again = await hooks.rotate_webhook_secret("acme", overlap_seconds=0)  # a leaked secret: stop it at once
    assert again["previous_expires_at"] is None
    assert await hooks.webhook_signing_secrets("acme") == [again["secret"]]
    short = await hooks.rotate_webhook_secret("acme", overlap_seconds=0.05)
    await asyncio.sleep(0.1)
    assert await hooks.webhook_signing_secrets("acme") == [short["secret"]]


async def test_redelivery_sends_a_message_again_with_the_same_id(store: JobStore) -> None:
    hooks = _hooks(store)
    job_id = await _finished(store, webhook_url=HOOK)
    [message] = await hooks.claim_webhooks("d1", limit=5, lease_seconds=30)
    assert await hooks.redeliver_webhook("acme", message.id) == "busy"  # being sent
    assert await hooks.record_webhook_attempt(message.id, "d1", error=None, next_attempt_at=None)
    assert await hooks.redeliver_webhook("other", message.id) == "missing"  # not theirs
    assert await hooks.redeliver_webhook("acme", "msg_nope") == "missing"
    assert await hooks.redeliver_webhook("acme", message.id) == "queued"
    [again] = await hooks.claim_webhooks("d2", limit=5, lease_seconds=30)
    assert again.id == message.id and again.attempts == 1 and again.payload == message.payload
    assert again.created_at >= message.created_at  # the retry window starts again
    shown = await hooks.webhook_delivery("acme", message.id)
    assert shown is not None and shown["job_id"] == job_id and shown["redelivered_at"]
    assert shown["status"] == "pending"
    assert await hooks.webhook_delivery("other", message.id) is None


async def test_a_retried_job_that_ends_again_notifies_again(store: JobStore) -> None:
    hooks = _hooks(store)
    job_id = await _finished(store, JobStatus.FAILED, webhook_url=HOOK)
    assert await store.retry_job(job_id, "acme") is not None
    await store.claim_jobs("w", pipelines=None, limit=1, lease_seconds=30)
    assert await store.finish(job_id, "w", JobStatus.SUCCEEDED)
    sent = await hooks.webhook_deliveries(job_id)
    assert [d["event_type"] for d in sent] == ["job.failed", "job.succeeded"]
    assert len({d["id"] for d in sent}) == 2  # two events: two webhook-ids
