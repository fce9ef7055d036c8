"""A provider simulator: a real HTTP server that speaks Deepgram, OpenAI-compatible and hosted-VAD shapes.

Tests and benchmarks point ingestd's provider clients at it instead of the internet. Run it with
``python -m ingestd.sim`` (``ingestd sim``), or in a test with ``ingestd.sim.testing.running_simulator``.
Routes, knobs and counters are described in ``docs/providers.md``.
"""

from __future__ import annotations

from ingestd.sim.app import create_app
from ingestd.sim.config import RouteConfig, SimConfig
from ingestd.sim.server import main

__all__ = ["RouteConfig", "SimConfig", "create_app", "main"]
