"""How ``wait`` waits: poll on the server's hint (``ServerHint``, the default), on a schedule (``Linear``,
``Exponential``), or follow the job's event stream (``EventStream``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class WaitStrategy(Protocol):
    def delay(self, attempt: int, hint: float | None) -> float:
        """Seconds to sleep before poll number ``attempt`` (0 = the first), given the server's hint."""
        ...


@dataclass(frozen=True)
class ServerHint:
    """Poll when the server's ``Retry-After`` says (its ETA), within [minimum, maximum]."""

    default: float = 2.0
    minimum: float = 0.2
    maximum: float = 600.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return min(self.maximum, max(self.minimum, self.default if hint is None else hint))


@dataclass(frozen=True)
class Linear:
    """First poll after ``first`` s, then every ``every`` s (a serverless orchestrator's schedule)."""

    first: float = 300.0
    every: float = 600.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return self.first if attempt == 0 else self.every


@dataclass(frozen=True)
class Exponential:
    """``initial * factor**attempt`` s, capped."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return float(min(self.cap, self.initial * self.factor ** min(attempt, 64)))


@dataclass(frozen=True)
class EventStream:
    """Follow the job's Server-Sent Events instead of polling."""
