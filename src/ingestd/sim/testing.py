"""Run the provider simulator inside a test or a benchmark.

Typical use (sync or async tests alike: the server runs in its own thread with its own event loop)::

    from ingestd.settings import Settings
    from ingestd.providers.registry import build_providers
    from ingestd.sim.testing import provider_settings, running_simulator

    def test_transcribes_each_span_once(tmp_path):
        with running_simulator({"time_scale": 0.01, "routes": {"chat": {"error_rates": {429: 0.2}}}}) as sim:
            providers = build_providers(Settings(**provider_settings(sim)))
            ...  # run the pipeline
            stats = sim.stats()
            assert max(stats["route_keys"]["deepgram"].values()) == 1  # no span transcribed twice
            assert stats["peak_in_flight"] <= 4

``sim`` is the base URL (a ``str``, e.g. ``http://127.0.0.1:41234``; OpenAI-compatible clients use
``sim.openai_base_url``, i.e. ``sim + "/v1"``) with helpers: ``sim.stats()`` (``GET /_sim/stats``),
``sim.reset()``, ``sim.configure(patch)`` (``POST /_sim/config``) and ``sim.state`` (the live ``SimState``, for
in-process peeking). For a subprocess (``ingestd serve`` in an acceptance test) pass ``provider_env(sim)`` as
environment variables.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from ingestd.sim.app import create_app
from ingestd.sim.config import SimConfig
from ingestd.sim.state import SimState

API_KEY = "sim-key"  # any non-empty key is accepted


class SimulatorURL(str):
    """The base URL of a running simulator, with helpers to read its counters and change its knobs."""

    state: SimState

    @property
    def openai_base_url(self) -> str:
        return self + "/v1"

    def stats(self) -> dict[str, Any]:
        """The counters (``GET /_sim/stats``): total_calls, in_flight, peak_in_flight, routes, keys, route_keys."""
        return self._call("GET", "/_sim/stats")

    def reset(self) -> dict[str, Any]:
        """Zero the counters (``POST /_sim/reset``)."""
        return self._call("POST", "/_sim/reset")

    def configure(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into the configuration (``POST /_sim/config``); returns the whole new configuration."""
        return self._call("POST", "/_sim/config", json=patch)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(method, self + path, timeout=10, **kwargs)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


@contextmanager
def running_simulator(config: SimConfig | dict[str, Any] | None = None) -> Iterator[SimulatorURL]:
    """Serve the simulator on a free loopback port in a background thread; yield its base URL.

    ``config`` is a ``SimConfig`` or a patch over the defaults (``{"time_scale": 0.01}``; ``routes["*"]``
    applies to every route). The server stops, and hanging calls are released, when the block exits.
    """
    settings = config if isinstance(config, SimConfig) else SimConfig().patched(config or {})
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False, ws="none", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ingestd-sim", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        url = SimulatorURL(f"http://127.0.0.1:{sock.getsockname()[1]}")
        url.state = app.state.sim
        yield url
    finally:
        app.state.sim.closing = True
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the provider simulator did not start")
        time.sleep(0.005)


def provider_settings(
    base_url: str, *, stt: str = "deepgram", vad: str = "hosted", llm: str = "openai", embedding: str = "openai"
) -> dict[str, Any]:
    """``Settings`` fields that point every hosted provider at the simulator: ``Settings(**provider_settings(sim))``.

    Pass ``stt="openai"`` for OpenAI-compatible transcription, or ``"offline"`` for any kind to keep the local one.
    """
    return {
        "stt_provider": stt,
        "vad_provider": vad,
        "llm_provider": llm,
        "embedding_provider": embedding,
        "deepgram_url": base_url,
        "deepgram_api_key": API_KEY,
        "openai_base_url": base_url + "/v1",
        "openai_api_key": API_KEY,
        "hosted_vad_url": base_url,
        "hosted_vad_api_key": API_KEY,
    }


def provider_env(base_url: str, **kinds: str) -> dict[str, str]:
    """The same as ``provider_settings``, as ``INGESTD_*`` environment variables for a subprocess."""
    return {f"INGESTD_{k.upper()}": str(v) for k, v in provider_settings(base_url, **kinds).items()}
