"""Fixtures of the dashboard tests: ``server`` (a real ingestd on SQLite), ``page`` (headless Debian Chromium),
``artifacts`` (where screenshots go). The helpers live in ``dashboard_support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import ARTIFACTS, CHROMIUM_ARGS, chromium_or_skip, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Base URL of a running ingestd (API + worker) on a fresh SQLite database, open mode on loopback."""
    with running_server(tmp_path) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Any]:
    """A playwright page in Debian's headless Chromium (1300x900), closed after the test."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    """``test-artifacts/`` at the repository root (gitignored), where screenshots go."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
