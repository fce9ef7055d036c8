"""IPv6 forms that carry an IPv4 address inside (6to4, NAT64, IPv4-compatible, Teredo) are judged by that IPv4
address: ``2002:7f00:1::`` reaches 127.0.0.1 through a 6to4 relay, so it is refused like 127.0.0.1 (issue 15,
point 6). The public forms of the same schemes still pass."""

from __future__ import annotations

import httpx
import pytest

from ingestd import errors
from ingestd.api.app import create_app
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore
from ingestd.webhooks import check_target


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::1]/", "metadata"),  # 6to4 of 169.254.169.254
        ("http://[2002:c0a8:0101::]/", "private"),  # 6to4 of 192.168.1.1
        ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64 (RFC 6052) of 127.0.0.1
        ("http://[64:ff9b::a00:7]/", "private"),  # NAT64 of 10.0.0.7
        ("http://[64:ff9b:1::a00:7]/", "local-use NAT64"),  # RFC 8215: the operator's own translator
        ("http://[::7f00:1]/", "loopback"),  # IPv4-compatible ::127.0.0.1
        ("http://[::ffff:0:7f00:1]/", "loopback"),  # IPv4-translated (SIIT)
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
async def test_ipv4_inside_ipv6_is_judged_by_the_ipv4_address(url: str, reason: str) -> None:
    with pytest.raises(errors.WebhookTargetRefused) as refused:
        await check_target(url, Settings())
    assert reason in refused.value.detail


@pytest.mark.parametrize("url", ["http://[2002:5db8:d822::1]/", "http://[64:ff9b::5db8:d822]/"])
async def test_public_ipv4_inside_ipv6_passes(url: str) -> None:
    target = await check_target(url, Settings())  # 93.184.216.34 behind 6to4 / NAT64
    assert target.address == url.split("[")[1].split("]")[0]


async def test_submit_refuses_a_6to4_loopback_webhook_with_a_422(store: JobStore) -> None:
    app = create_app(Settings(database_url=store.url), store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestd.test") as api:
            response = await api.post("/v1/pipelines/demo/jobs?webhook_url=http://[2002:7f00:1::]/x", json={})
    assert response.status_code == 422 and response.json()["code"] == "webhook-target-refused"
    assert "loopback" in response.json()["detail"]
