"""Refusing server-side request forgery: targets are checked after DNS resolution, at submit, at endpoint
registration and again at delivery; the API answers a refused target with a 422 problem saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from webhook_receiver import running_receiver
from workers import running_worker, wait_until

from ingestd import errors
from ingestd.api.app import create_app
from ingestd.models import NewJob
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore, WebhookStore
from ingestd.webhooks import check_target

FAST = {"lease_seconds": 2.0, "heartbeat_seconds": 0.2, "poll_seconds": 0.2, "webhook_timeout_seconds": 0.5}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),  # a name: refused for what it resolves to
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://10.0.0.7/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("http://100.64.0.1/", "shared"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
async def test_internal_targets_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(errors.WebhookTargetRefused) as refused:
        await check_target(url, Settings())
    assert reason in refused.value.detail and "INGESTD_WEBHOOK_ALLOW" in refused.value.detail


async def test_operator_allow_lists_by_network_or_host_name() -> None:
    target = await check_target("http://127.0.0.1:8080/h", Settings(webhook_allow_networks=["127.0.0.0/8"]))
    assert target.pinned_url() == "http://127.0.0.1:8080/h"
    named = await check_target("http://localhost:8080/h", Settings(webhook_allow_hosts=["LOCALHOST"]))
    assert named.host_header() == "localhost:8080" and named.address in ("127.0.0.1", "::1")
    with pytest.raises(errors.WebhookTargetRefused):  # allowing one network does not allow the others
        await check_target("http://10.0.0.1/", Settings(webhook_allow_networks=["127.0.0.0/8"]))


async def test_a_public_address_passes_and_non_http_urls_do_not() -> None:
    assert (await check_target("https://93.184.215.14/hook", Settings())).address == "93.184.215.14"
    for bad in ("ftp://93.184.215.14/x", "http:///nohost", "http://user:pw@93.184.215.14/"):
        with pytest.raises(errors.WebhookTargetRefused):
            await check_target(bad, Settings())


@asynccontextmanager
async def api(store: JobStore, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=store.url, **settings), store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_submit_answers_422_for_a_metadata_webhook_url_and_creates_no_job(store: JobStore) -> None:
    async with api(store) as client:
        answer = await client.post(
            "/v1/pipelines/noop/jobs", json={}, params={"webhook_url": "http://169.254.169.254/latest/"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert problem["code"] == "webhook-target-refused" and "metadata" in problem["detail"]
        listed = await client.get("/v1/jobs")
        assert listed.status_code == 200 and listed.json()["jobs"] == []


async def test_endpoint_registration_refuses_loopback_unless_allowed(store: JobStore) -> None:
    async with api(store) as client:
        refused = await client.post("/v1/webhooks/endpoints", json={"url": "http://localhost:9/x"})
        assert refused.status_code == 422 and "loopback" in refused.json()["detail"]
    async with api(store, webhook_allow_networks=["127.0.0.1/32"]) as client:
        made = await client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"})
        assert made.status_code == 201, made.text
        listed = (await client.get("/v1/webhooks/endpoints")).json()["endpoints"]
        assert [e["url"] for e in listed] == ["http://127.0.0.1:9/x"]
        assert (await client.delete(f"/v1/webhooks/endpoints/{listed[0]['id']}")).status_code == 204
        assert (await client.get("/v1/webhooks/endpoints")).json()["endpoints"] == []
        first = (await client.get("/v1/webhooks/secret")).json()["secret"]
        rotated = (await client.post("/v1/webhooks/secret/rotate")).json()["secret"]
        assert first.startswith("whsec_") and rotated.startswith("whsec_") and rotated != first
        assert (await client.get("/v1/webhooks/secret")).json()["secret"] == rotated


async def test_a_target_refused_at_delivery_fails_with_a_clear_error(store: JobStore) -> None:
    """A job submitted while loopback was allowed, delivered by a worker whose operator no longer allows it."""
    with running_receiver() as receiver:
        job = (await store.submit(NewJob(pipeline="noop", input={}, webhook_url=receiver.url))).job
        assert isinstance(store, WebhookStore)

        async def settled() -> bool:
            return await _status(store, job.id) not in (None, "pending")

        async with running_worker(store, Settings(database_url=store.url, **FAST)):
            await wait_until(settled, what="the delivery to be settled", interval=0.05)
        async with api(store) as client:
            shown = (await client.get(f"/v1/jobs/{job.id}/webhooks")).json()["deliveries"]
    assert receiver.requests == []
    [delivery] = shown
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert "loopback" in delivery["last_error"] and "127.0.0.1" in delivery["last_error"]


async def test_tenant_endpoint_gets_jobs_without_their_own_url(store: JobStore) -> None:
    with running_receiver() as receiver:
        assert isinstance(store, WebhookStore)
        await store.add_webhook_endpoint("default", receiver.url)
        job = (await store.submit(NewJob(pipeline="noop", input={}))).job
        settings = Settings(database_url=store.url, webhook_allow_networks=["127.0.0.1/32"], **FAST)

        async def delivered() -> bool:
            # The receiver's ack comes before the dispatcher records it: wait for both before stopping.
            return receiver.acknowledged() and await _status(store, job.id) == "delivered"

        async with running_worker(store, settings):
            await wait_until(delivered, what="the delivery", interval=0.05)
    [delivery] = await store.webhook_deliveries(job.id)
    assert delivery["url"] == receiver.url and delivery["status"] == "delivered"


async def _status(store: WebhookStore, job_id: str) -> str | None:
    found = await store.webhook_deliveries(job_id)
    return str(found[0]["status"]) if found else None
