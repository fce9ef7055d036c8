"""Fixtures for the provider tests: a simulator on loopback per test, and synthetic audio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sim_audio import bursts

from ingestd.sim.testing import SimulatorURL, running_simulator


@pytest.fixture
def sim() -> Iterator[SimulatorURL]:
    """A fresh simulator, 100x faster than the real services (override with ``sim.configure``)."""
    with running_simulator({"time_scale": 0.01}) as url:
        yield url


@pytest.fixture
def speech_pcm() -> bytes:
    """6 s of audio with two stretches of 'speech' (tone): 0.5-2.5 s and 3.5-5.5 s."""
    return bursts([(0.5, False), (2.0, True), (1.0, False), (2.0, True), (0.5, False)])


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A shared client for the provider clients under test, closed even when a test fails."""
    async with httpx.AsyncClient() as client:
        yield client
