"""Fixtures of the store contract tests (the ``store`` / ``database_url`` fixtures live in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

import ingestd.store.postgres
import ingestd.store.sqlite

SLOW_FALLBACK_SECONDS = 30.0


@pytest.fixture
def slow_fallback(monkeypatch: pytest.MonkeyPatch) -> float:
    """Sleepers re-check the database every 30 s instead of every second, so a waiter that wakes within a few
    seconds was woken by a wake-up (NOTIFY, the SQLite wake socket), not by its fallback poll: a proof that holds
    on a loaded machine, unlike a tight timing budget."""
    for module in (ingestd.store.sqlite, ingestd.store.postgres):
        monkeypatch.setattr(module, "_FALLBACK_POLL_SECONDS", SLOW_FALLBACK_SECONDS)
    return SLOW_FALLBACK_SECONDS
