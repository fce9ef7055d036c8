"""Webhook delivery end to end: a real receiver on loopback (allow-listed here), a real worker, both databases."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from webhook_receiver import Receiver, running_receiver
from workers import FAST_WORKER, WorkerProcess, ingestd_env, running_worker, wait_until

from ingestd.client import verify_webhook
from ingestd.models import Job, NewJob
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore, WebhookStore

WEBHOOKS = {
    "webhook_allow_networks": ["127.0.0.1/32"],  # the receiver runs on loopback: the operator allows it
    "webhook_retry_base_seconds": 0.1,
    "webhook_timeout_seconds": 0.5,
}


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(**{"database_url": url, **FAST_WORKER, **WEBHOOKS, **overrides})


async def deliveries(store: JobStore, job_id: str) -> list[dict[str, Any]]:
    assert isinstance(store, WebhookStore)
    return await store.webhook_deliveries(job_id)


async def all_settled(store: JobStore, job_ids: list[str]) -> bool:
    for job_id in job_ids:
        found = await deliveries(store, job_id)
        if not found or any(d["status"] == "pending" for d in found):
            return False
    return True


async def submit(store: JobStore, url: str | None, **fields: Any) -> Job:
    return (await store.submit(NewJob(pipeline="noop", input={}, webhook_url=url, **fields))).job


def verified_bodies(receiver: Receiver, secret: str, message_id: str) -> list[dict[str, Any]]:
    return [verify_webhook(r.body, r.headers, secret) for r in receiver.attempts_of(message_id)]


async def test_each_finished_job_gets_one_verified_delivery_after_two_failed_attempts(store: JobStore) -> None:
    with running_receiver(fail_first=2) as receiver:
        jobs = [await submit(store, receiver.url) for _ in range(3)]
        async with running_worker(store, settings_for(store.url)):
            await wait_until(
                lambda: all_settled(store, [j.id for j in jobs]), timeout=30, what="deliveries", interval=0.05
            )
        assert isinstance(store, WebhookStore)
        secret = await store.webhook_secret("default")
        for job in jobs:
            [delivery] = await deliveries(store, job.id)
            assert delivery["status"] == "delivered" and delivery["attempts"] == 3, delivery
            bodies = verified_bodies(receiver, secret, delivery["id"])  # raises if a signature is wrong
            assert len(bodies) == 3  # two answered 500, the third 204; same webhook-id each time
            assert {json.dumps(b, sort_keys=True) for b in bodies} == {json.dumps(bodies[0], sort_keys=True)}
            assert bodies[0]["type"] == "job.succeeded"
            assert bodies[0]["data"] == {"id": job.id, "tenant": "default", "pipeline": "noop", "status": "succeeded"}
        acked = [r.headers["webhook-id"] for r in receiver.acknowledged()]
        assert sorted(acked) == sorted({a for a in acked}) and len(acked) == 3  # exactly one per job


async def test_a_wrong_secret_or_a_changed_body_does_not_verify(store: JobStore) -> None:
    with running_receiver() as receiver:
        job = await submit(store, receiver.url)
        async with running_worker(store, settings_for(store.url)):
            await wait_until(lambda: all_settled(store, [job.id]), timeout=30, what="delivery", interval=0.05)
    [request] = receiver.requests
    assert isinstance(store, WebhookStore)
    secret = await store.webhook_secret("default")
    assert verify_webhook(request.body, request.headers, secret)["data"]["id"] == job.id
    other = await store.webhook_secret("another-tenant")
    for body, key in ((request.body, other), (request.body.replace(b"succeeded", b"failed"), secret)):
        try:
            verify_webhook(body, request.headers, key)
        except Exception as exc:
            assert type(exc).__name__ == "WebhookVerificationError"
        else:
            raise AssertionError("a forged webhook verified")


async def test_worker_killed_between_commit_and_delivery(database_url: str, tmp_path: Path) -> None:
    """The first worker finishes the job (the outbox row commits with it) and is SIGKILLed while its POST is in
    flight; the receiver drops that request. A second worker delivers it once, after the first one's lease."""
    from ingestd.store import open_store

    env = ingestd_env({**FAST_WORKER, **WEBHOOKS})
    with running_receiver(hold_first=True) as receiver:
        store = await open_store(database_url, migrate=False)
        first = WorkerProcess(database_url, tmp_path, "hooks-a", env)
        second: WorkerProcess | None = None
        try:
            job = await submit(store, receiver.url)
            await wait_until(
                lambda: asyncio.to_thread(receiver.held.wait, 0.05), timeout=60, what="the first attempt", interval=0.05
            )
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            receiver.release.set()  # the held request ends without an answer
            finished = await store.get_job(job.id)
            assert finished is not None and finished.status.value == "succeeded"
            [pending] = await deliveries(store, job.id)
            assert pending["status"] == "pending" and pending["attempts"] == 0  # nobody recorded an attempt
            second = WorkerProcess(database_url, tmp_path, "hooks-b", env)
            await wait_until(lambda: all_settled(store, [job.id]), timeout=60, what="redelivery", interval=0.05)
            [delivery] = await deliveries(store, job.id)
            assert isinstance(store, WebhookStore)
            secret = await store.webhook_secret("default")
        finally:
            await store.close()
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1, delivery
    attempts = receiver.attempts_of(delivery["id"])
    assert [a.answered for a in attempts] == [None, 204]  # the dropped one, then the one delivery
    assert len(receiver.acknowledged()) == 1
    assert verified_bodies(receiver, secret, delivery["id"])[1]["data"]["id"] == job.id
