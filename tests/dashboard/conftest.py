"""Fixtures of the dashboard tests: ``server`` (a real ingestd on SQLite), ``page`` (headless Debian Chromium),
``artifacts`` (where screenshots go). The helpers live in ``dashboard_support``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash_pipelines import LIMITED_PROVIDER
from dashboard_support import ARTIFACTS, CHROMIUM_ARGS, chromium_or_skip, running_server

HERE = Path(__file__).parent


@pytest.fixture(autouse=True, scope="session")
def _patient_expect() -> None:
    """Playwright's ``expect`` waits up to 15 s (its default, 5 s, was missed once by a page's first render on a
    loaded CI machine): how long to wait for what the page must show, not a bound on how fast it shows it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running ingestd (API + worker) on its own SQLite database, open mode on loopback, with the
    ``dash_pipelines`` registered and provider ``slowapi`` limited to 1 call at a time; shared by every module
    here (a subprocess: unlike the browser it holds no event loop), each test submitting its own jobs and looking
    only at those."""
    env = {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "INGESTD_PIPELINE_MODULES": json.dumps(["dash_pipelines:PIPELINES"]),
        "INGESTD_PROVIDER_LIMITS": json.dumps({LIMITED_PROVIDER: {"concurrency": 1}}),
    }
    with running_server(tmp_path_factory.mktemp("server"), **env) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once per module (and closed with it, so playwright's own event
    loop is gone before other directories' asyncio tests run)."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no shared storage) at 1300x900, closed after the test."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository root (gitignored), where screenshots go."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
