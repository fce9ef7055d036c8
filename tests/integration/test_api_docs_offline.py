"""``/docs`` (Swagger UI) and ``/redoc`` load every script, style and icon from the API itself: nothing from a CDN,
so they render with the network off (the browser test is tests/dashboard/test_docs_offline.py)."""

from __future__ import annotations

import re

import httpx


async def _local_assets(api: httpx.AsyncClient, page: str) -> list[str]:
    answer = await api.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", answer.text) + re.findall(r"url: ?'([^']+)'", answer.text)
    assert urls, answer.text
    remote = [u for u in urls if re.match(r"(https?:)?//", u)]
    assert remote == [], f"{page} loads {remote} from the network"
    return urls


async def test_swagger_ui_and_redoc_are_served_without_a_cdn(api: httpx.AsyncClient) -> None:
    swagger = await _local_assets(api, "/docs")
    redoc = await _local_assets(api, "/redoc")
    assert "/docs/swagger-ui-bundle.js" in swagger and "/docs/swagger-ui.css" in swagger
    assert "/redoc/redoc.standalone.js" in redoc
    for url in {*swagger, *redoc}:
        served = await api.get(url)
        assert served.status_code == 200 and len(served.content) > 0, url
    bundle = await api.get("/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert len(bundle.content) > 500_000  # the real bundle, not a stub
    assert (await api.get("/openapi.json")).json()["info"]["title"] == "ingestd"
