"""``/docs`` and ``/redoc`` render in headless Chromium with every non-loopback request refused (the network off)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def _offline(page: Any) -> list[str]:
    """Refuse every request that leaves the machine; the list of those refused."""
    refused: list[str] = []

    def handle(route: Any) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    return refused


def test_swagger_ui_and_redoc_render_offline(server: str, page: Any, artifacts: Path) -> None:
    refused = _offline(page)
    page.goto(f"{server}/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)  # operations drawn from /openapi.json
    assert page.locator(".swagger-ui .opblock").count() > 10
    page.screenshot(path=str(artifacts / "docs-swagger-offline.png"))
    page.goto(f"{server}/redoc")
    page.wait_for_selector(".api-content h1", timeout=30_000)
    assert "ingestd" in page.locator(".api-content h1").first.inner_text()
    page.screenshot(path=str(artifacts / "docs-redoc-offline.png"))
    assert refused == []
