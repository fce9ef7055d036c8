"""What the simulator remembers: its configuration, call counters and in-flight calls.

One ``SimState`` lives in one event loop (the server's), so plain integers need no lock.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ingestd.sim.config import ROUTES, RouteConfig, SimConfig


@dataclass
class RouteStats:
    calls: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "ok", "429", "500", "hang", "400", ...


@dataclass
class Call:
    """One call in progress."""

    route: str
    key: str | None
    attempt: int  # 1 for the first call under this request key on this route
    in_flight: int  # the route's calls in progress when this one started, itself included


class SimState:
    """Counters per route and per request key, the peak concurrency, and the live configuration."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.rng = random.Random(self.config.seed)
        self.closing = False  # set on shutdown so hanging calls let go
        self.reset()

    def reset(self) -> None:
        """Forget every counter (the configuration stays)."""
        self.routes = {name: RouteStats() for name in ROUTES}
        self.keys: Counter[str] = Counter()
        self.route_keys: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.total_calls = 0
        self.rng = random.Random(self.config.seed)

    def configure(self, patch: dict[str, Any]) -> SimConfig:
        """Merge ``patch`` into the configuration (see ``SimConfig.patched``) and return the result."""
        self.config = self.config.patched(patch)
        if "seed" in patch:
            self.rng = random.Random(self.config.seed)
        return self.config

    def route(self, name: str) -> RouteConfig:
        return self.config.routes[name]

    def begin(self, route: str, key: str | None) -> Call:
        stats = self.routes[route]
        stats.calls += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        self.total_calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        attempt = 0
        if key is not None:
            self.keys[key] += 1
            self.route_keys[route][key] += 1
            attempt = self.route_keys[route][key]
        return Call(route, key, attempt, stats.in_flight)

    def end(self, call: Call, outcome: str) -> None:
        stats = self.routes[call.route]
        stats.in_flight -= 1
        stats.outcomes[outcome] += 1
        self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        """The ``GET /_sim/stats`` document."""
        return {
            "total_calls": self.total_calls,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "routes": {
                name: {
                    "calls": s.calls,
                    "in_flight": s.in_flight,
                    "peak_in_flight": s.peak_in_flight,
                    "outcomes": dict(s.outcomes),
                }
                for name, s in self.routes.items()
            },
            "keys": dict(self.keys),
            "route_keys": {route: dict(keys) for route, keys in self.route_keys.items()},
        }
