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
    """One chat message."""

    model_config = ConfigDict(extra="forbid")

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
    """``{user_id, session_id, messages: [{role, content, timestamp}], reference_time}``."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    session_id: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    reference_time: datetime

    @field_validator("reference_time")
    @classmethod
    def _zone(cls, value: datetime) -> datetime:
        return _aware(value)

    @model_validator(mode="after")
    def _size(self) -> MemoryInput:
        total = sum(len(m.content) for m in self.messages)
        if total > MAX_SESSION_CHARS:
            raise ValueError(f"the session holds {total} characters; at most {MAX_SESSION_CHARS} are accepted")
        return self
