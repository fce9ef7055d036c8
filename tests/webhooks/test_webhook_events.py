"""Webhooks as receivers expect, through the API with a worker in process and real receivers on loopback (both
databases): event types per endpoint (and the opt-in ``job.progress``), a secret rotation's overlap during which
a receiver holding either secret accepts (checked with the ``standardwebhooks`` package), redelivery."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_receiver import Receiver, running_receiver
from workers import FAST_API, wait_until

from ingestd.api.app import create_app
from ingestd.settings import Settings
from ingestd.store import open_store

HOOKS = {
    "webhook_dispatch": True,
    "webhook_allow_networks": ["127.0.0.1/32"],  # the receivers run on loopback: the operator allows it
    "webhook_retry_base_seconds": 0.1,
    "webhook_timeout_seconds": 2.0,
    "pipeline_modules": ["webhook_pipelines:PIPELINES"],
}
Api = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(**{"database_url": database_url, **FAST_API, **HOOKS})
    store = await open_store(database_url, migrate=False)
    try:
        app = create_app(settings, store=store, run_worker=True)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test", timeout=30) as client:
                yield client
    finally:
        await store.close()


async def submit(api: httpx.AsyncClient, body: dict[str, Any], **params: str) -> str:
    answer = await api.post("/v1/pipelines/hooked/jobs", json=body, params=params)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def settled(api: httpx.AsyncClient, job_id: str, count: int) -> list[dict[str, Any]]:
    """The job's deliveries once ``count`` of them are delivered or given up (none pending)."""

    async def done() -> bool:
        found = (await api.get(f"/v1/jobs/{job_id}/webhooks")).json()["deliveries"]
        return len(found) == count and all(d["status"] != "pending" for d in found)

    await wait_until(done, timeout=30, what=f"{count} deliveries of {job_id}", interval=0.05)
    deliveries: list[dict[str, Any]] = (await api.get(f"/v1/jobs/{job_id}/webhooks")).json()["deliveries"]
    return deliveries


def events(receiver: Receiver) -> list[tuple[str, str]]:
    """(job id, event type) of each request the receiver answered 2xx."""
    bodies = [json.loads(r.body) for r in receiver.acknowledged()]
    return [(b["data"]["id"], b["type"]) for b in bodies]


async def test_each_endpoint_gets_the_event_types_it_subscribed_to(api: httpx.AsyncClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with contextlib.ExitStack() as stack:
        terminal, failures, progress = (stack.enter_context(running_receiver()) for _ in range(3))
        for receiver, types in ((terminal, None), (failures, ["job.failed"]),
                                (progress, ["job.succeeded", "job.progress"])):  # fmt: skip
            body = {"url": receiver.url} | ({"event_types": types} if types else {})
            made = await api.post("/v1/webhooks/endpoints", json=body)
            assert made.status_code == 201, made.text
            assert made.json()["event_types"] == (
                types or ["job.succeeded", "job.partial", "job.failed", "job.canceled"]
            )
        bad_type = await api.post("/v1/webhooks/endpoints", json={"url": terminal.url, "event_types": ["job.done"]})
        assert bad_type.status_code == 422 and "job.progress" in bad_type.text  # names the event types there are

        ok = await submit(api, {"items": 3, "gate": str(gate)})
        # The job is held at its gate after its map: its progress reaches the endpoint that asked for it.
        await wait_until(lambda: _has(progress, (ok, "job.progress")), timeout=30, what="a progress webhook")
        gate.touch()
        failed = await submit(api, {"items": 1, "fail": True})
        await settled(api, failed, 2)  # terminal and failures
        deliveries = await settled(api, ok, 2 + sum(1 for e in events(progress) if e[1] == "job.progress"))

    assert sorted(events(terminal)) == sorted([(ok, "job.succeeded"), (failed, "job.failed")])
    assert events(failures) == [(failed, "job.failed")]
    assert events(progress)[-1] == (ok, "job.succeeded") and (failed, "job.failed") not in events(progress)
    [counted] = [json.loads(r.body)["data"] for r in progress.acknowledged()][:1]
    assert counted["status"] == "running" and counted["progress"] == {"stage": "work", "done": 3, "total": 3}
    assert {d["event_type"] for d in deliveries} >= {"job.progress", "job.succeeded"}


async def _has(receiver: Receiver, event: tuple[str, str]) -> bool:
    return event in events(receiver)


def verifies(secret: str, request: Any) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


async def test_during_a_rotation_a_receiver_with_either_secret_accepts(api: httpx.AsyncClient) -> None:
    old = (await api.get("/v1/webhooks/secret")).json()
    assert old["secret"].startswith("whsec_") and old["previous_expires_at"] is None
    rotated = (await api.post("/v1/webhooks/secret/rotate", json={"overlap_seconds": 3600})).json()
    assert rotated["secret"] != old["secret"] and rotated["previous_expires_at"]
    with running_receiver() as receiver:
        during = await submit(api, {"items": 1}, webhook_url=receiver.url)
        await settled(api, during, 1)
        [request] = receiver.requests
        assert len(request.headers["webhook-signature"].split(" ")) == 2  # v1,<new> v1,<old>
        assert verifies(old["secret"], request) and verifies(rotated["secret"], request)  # either secret accepts

        ended = (await api.post("/v1/webhooks/secret/rotate", json={"overlap_seconds": 0})).json()
        assert ended["previous_expires_at"] is None  # a leaked secret stops signing at once
        after = await submit(api, {"items": 1}, webhook_url=receiver.url)
        await settled(api, after, 1)
        last = receiver.requests[-1]
        assert verifies(ended["secret"], last)
        assert not verifies(rotated["secret"], last) and not verifies(old["secret"], last)
        assert (await api.post("/v1/webhooks/secret/rotate", json={"overlap_seconds": -1})).status_code == 422


async def test_a_delivery_is_sent_again_on_request(api: httpx.AsyncClient) -> None:
    with running_receiver() as receiver:
        job_id = await submit(api, {"items": 1}, webhook_url=receiver.url)
        [delivery] = await settled(api, job_id, 1)
        assert delivery["status"] == "delivered" and delivery["event_type"] == "job.succeeded"
        answer = await api.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
        assert answer.status_code == 202, answer.text
        assert answer.json()["id"] == delivery["id"] and answer.json()["redelivered_at"]

        async def twice() -> bool:
            return (
                len(receiver.attempts_of(delivery["id"])) == 2
                and (await api.get(f"/v1/webhooks/deliveries/{delivery['id']}")).json()["status"] == "delivered"
            )

        await wait_until(twice, timeout=30, what="the redelivery", interval=0.05)
        first, second = receiver.attempts_of(delivery["id"])
        assert first.body == second.body  # the same message, signed anew
        shown = (await api.get(f"/v1/webhooks/deliveries/{delivery['id']}")).json()
        assert shown["attempts"] == 2 and shown["job_id"] == job_id
    missing = await api.post("/v1/webhooks/deliveries/msg_nope/redeliver")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
