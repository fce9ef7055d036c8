"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their scripts and styles served by the API itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank offline (and tell a third party who
reads the docs). The files come from the ``fastapi-standalone-docs`` package, which ships pinned copies of them
(Swagger UI 5, ReDoc 2, with their licences); the pages are FastAPI's, pointed at those copies: ``/docs/...`` and
``/redoc/...`` serve the files, the way that package lays them out (ReDoc looks for its logo next to its page).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_standalone_docs") / "static"))
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
FAVICON_URL = f"{DOCS_URL}/fastapi/favicon.png"  # both pages show FastAPI's icon


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from local files (create the app with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"

    def page(
        request: Request, render: Callable[..., HTMLResponse], name: str, urls: dict[str, str], **options: Any
    ) -> HTMLResponse:
        """FastAPI's page ``render``ed with the schema and ``urls`` under the app's root path (a proxy's prefix)."""
        root = request.scope.get("root_path", "")
        under_root = {key: root + url for key, url in urls.items()}
        return render(openapi_url=root + openapi_url, title=f"{app.title} - {name}", **under_root, **options)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        urls = {
            "swagger_js_url": f"{DOCS_URL}/swagger-ui-bundle.js",
            "swagger_css_url": f"{DOCS_URL}/swagger-ui.css",
            "swagger_favicon_url": FAVICON_URL,
        }
        return page(request, get_swagger_ui_html, "Swagger UI", urls)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        urls = {"redoc_js_url": f"{REDOC_URL}/redoc.standalone.js", "redoc_favicon_url": FAVICON_URL}
        return page(request, get_redoc_html, "ReDoc", urls, with_google_fonts=False)

    # Mounted after the two pages: "/docs" itself is the page, "/docs/<file>" a file.
    app.mount(f"{DOCS_URL}/fastapi", StaticFiles(directory=ASSETS / "fastapi"), name="docs-fastapi")
    app.mount(DOCS_URL, StaticFiles(directory=ASSETS / "swagger"), name="docs-swagger")
    app.mount(REDOC_URL, StaticFiles(directory=ASSETS / "redoc"), name="docs-redoc")


__all__ = ["install"]
