"""The audio pipeline's input: options in the JSON ``input``, recordings as the job's files.

Per-file facts travel as file metadata (``meta.<file>`` form fields or ``input.file_meta``, see
``ingestd.api.uploads``): ``captured_at`` (ISO 8601, when the recording started), and for raw PCM16
``sample_rate`` (and ``channels``, default 1). They are read by ``file_spec`` when the ``decode`` step runs, so
a bad value fails the job at ``decode`` with the file's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ingestd import errors
from ingestd.models import StoredFile
from ingestd.pipelines.audio.decode import SourceSpec
from ingestd.providers import whisper_models

DEFAULT_GAP_SECONDS = 120.0
DEFAULT_MAX_CLIP_SECONDS = 300.0


class Folder(BaseModel):
    """One of the tenant's folders a conversation may be filed in."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class AudioInput(BaseModel):
    """Options of an ``audio`` job (every field is optional)."""

    model_config = ConfigDict(extra="forbid")

    source_urls: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="recordings to fetch (http/https) instead of uploading them; after any uploaded files",
        json_schema_extra={"items": {"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 2000}},
    )
    language: str | None = Field(
        default=None, max_length=20, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47, e.g. en"
    )
    speakers: int | None = Field(default=None, ge=1, le=50, description="the number of speakers, when known")
    min_speakers: int | None = Field(default=None, ge=1, le=50, description="at least this many speakers")
    max_speakers: int | None = Field(default=None, ge=1, le=50, description="at most this many speakers")
    diarize: bool = Field(default=True, description="tell speakers apart (false: words carry no speaker)")
    channels: Literal["mix", "separate"] = Field(
        default="mix", description="separate: each channel of a multichannel file is transcribed as its own speaker"
    )
    vocabulary: list[str] = Field(default_factory=list, max_length=200, description="names and terms to expect")
    folders: list[Folder] = Field(default_factory=list, max_length=500, description="where conversations may go")
    conversation_gap_seconds: float = Field(
        default=DEFAULT_GAP_SECONDS, ge=0, le=86_400, description="silence longer than this splits conversations"
    )
    max_clip_seconds: float = Field(
        default=DEFAULT_MAX_CLIP_SECONDS, ge=1, le=3600, description="at most this much speech per transcription"
    )
    model: str | None = Field(
        default=None,
        max_length=40,
        description="the offline Whisper model: " + ", ".join(whisper_models.MODELS) + " (default: the server's)",
        json_schema_extra={"enum": [*whisper_models.MODELS, None]},
    )
    transcribe_concurrency: int | None = Field(
        default=None, ge=1, le=256, description="clips transcribed at once (default: 8 hosted, 1 offline)"
    )

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None and value not in whisper_models.MODELS:
            raise ValueError(f"unknown model {value!r}; the packaged ones are {', '.join(whisper_models.MODELS)}")
        return value

    @field_validator("min_speakers")
    @classmethod
    def _speaker_floor(cls, value: int | None, info: ValidationInfo) -> int | None:
        exact = info.data.get("speakers")
        if value is not None and exact is not None and value > exact:
            raise ValueError(f"min_speakers {value} is above speakers {exact}")
        return value

    @field_validator("max_speakers")
    @classmethod
    def _speaker_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_speakers")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max_speakers {value} is below min_speakers {low}")
        exact = info.data.get("speakers")
        if exact is not None and value is not None and exact > value:
            raise ValueError(f"max_speakers {value} is below speakers {exact}")
        return value

    def speaker_count(self) -> tuple[int, int]:
        """The (least, most) speakers the clustering may find."""
        if self.speakers is not None:
            return self.speakers, self.speakers
        return self.min_speakers or 1, self.max_speakers or 50

    @field_validator("vocabulary")
    @classmethod
    def _terms(cls, value: list[str]) -> list[str]:
        terms = [t.strip() for t in value if t.strip()]
        if any(len(t) > 100 for t in terms):
            raise ValueError("a vocabulary term has at most 100 characters")
        return terms


def _aware(value: datetime) -> datetime:
    # A time without a zone is taken as UTC, so times of different files compare.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def captured_at(file: StoredFile) -> datetime | None:
    """When the recording started (``meta.captured_at``), or None when not given."""
    raw: Any = file.meta.get("captured_at")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise errors.PermanentError(f"{file.name}: captured_at must be an ISO 8601 string", file=file.name)
    try:
        return _aware(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError as exc:
        raise errors.PermanentError(
            f"{file.name}: captured_at {raw!r} is not an ISO 8601 time", file=file.name
        ) from exc


def _positive_int(file: StoredFile, key: str, low: int, high: int) -> int | None:
    raw: Any = file.meta.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise errors.PermanentError(f"{file.name}: {key} must be a whole number", file=file.name)
    value = int(raw)
    if not low <= value <= high:
        raise errors.PermanentError(f"{file.name}: {key} {value} is outside {low}..{high}", file=file.name)
    return value


def file_spec(file: StoredFile) -> SourceSpec:
    """What the decoder is told about one input file."""
    rate = _positive_int(file, "sample_rate", 1000, 384_000)
    channels = _positive_int(file, "channels", 1, 8) or 1
    return SourceSpec(file.name, file.content_type or "application/octet-stream", rate, channels)


__all__ = ["AudioInput", "Folder", "captured_at", "file_spec"]
