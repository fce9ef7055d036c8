"""What the client tests share: the session remembered for each user, and the live server's address and key."""

from __future__ import annotations

from dataclasses import dataclass

USERS = ("alice", "alice-del", "alice+async@example.com")  # each test that deletes has its own user

ALICE = {
    "user_id": "alice",
    "session_id": "s1",
    "reference_time": "2026-03-01T10:00:00Z",
    "messages": [
        {"role": "user", "content": "My friend Emma Schmidt lives in Lisbon and works at Stripe.",
         "timestamp": "2026-03-01T10:00:00Z"},
        {"role": "assistant", "content": "Noted.", "timestamp": "2026-03-01T10:00:05Z"},
        {"role": "user", "content": "Tom Becker lives in Berlin.", "timestamp": "2026-03-01T10:01:00Z"},
    ],
}  # fmt: skip


@dataclass
class Live:
    """A server with a key of tenant ``acme`` (every scope but admin) and ``ALICE``'s session in the memory of
    each of ``USERS``."""

    url: str
    key: str
