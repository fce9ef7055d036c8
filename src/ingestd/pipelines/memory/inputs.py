"""The memory pipeline's input: one chat session of one user. Invalid input is a 422 at submission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_MESSAGES = 5_000
MAX_MESSAGE_CHARS = 20_000
MAX_SESSION_CHARS = 2_000_000
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"


def _aware(value: datetime) -> datetime:
    # A time without a zone is taken as UTC, so comparisons never mix naive and aware times.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Message(BaseModel):
    """One chat message; ``name`` is its speaker ("Caroline"), ``id`` the client's id for it (default
    ``<session_id>:<index>``), unique within the user's memory."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Literal["user", "assistant", "system"]
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    timestamp: datetime

    @field_validator("timestamp")
    @classmethod
    def _zone(cls, value: datetime) -> datetime:
        return _aware(value)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        return value


class MemoryInput(BaseModel):
    """``{user_id, session_id, messages: [{id?, name?, role, content, timestamp}], reference_time?}``;
    ``reference_time`` defaults to the last message's timestamp."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    session_id: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    reference_time: datetime | None = None

    @field_validator("reference_time")
    @classmethod
    def _zone(cls, value: datetime | None) -> datetime | None:
        return _aware(value) if value is not None else None

    @model_validator(mode="after")
    def _size(self) -> MemoryInput:
        total = sum(len(m.content) for m in self.messages)
        if total > MAX_SESSION_CHARS:
            raise ValueError(f"the session holds {total} characters; at most {MAX_SESSION_CHARS} are accepted")
        ids = self.message_ids()
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"message ids must be unique within a session; repeated: {', '.join(repeated)}")
        if self.reference_time is None:
            self.reference_time = self.messages[-1].timestamp
        return self

    def message_ids(self) -> list[str]:
        """Each message's client id: its own, or ``<session_id>:<index>``."""
        return [m.id or f"{self.session_id}:{i}" for i, m in enumerate(self.messages)]

    @property
    def reference(self) -> datetime:
        """The time relative expressions are read against when a message has none of its own."""
        return self.reference_time or self.messages[-1].timestamp
