"""The shapes of the API's answers, for the OpenAPI document (``/openapi.json``, ``/docs``).

Handlers build their JSON with ``views.render_job`` and friends and serialise it with orjson, so these models
cost nothing per request: they only describe the answers (and the schemathesis run in the acceptance tests
checks the answers against them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ingestd.models import JobStatus


class ProgressOut(BaseModel):
    stage: str | None = Field(description="the stage running now")
    done: int = Field(description="items done in a fan-out stage")
    total: int = Field(description="items in that stage (0: not a fan-out)")
    eta_seconds: float | None = Field(None, description="estimated seconds left (absent once finished)")


class FileOut(BaseModel):
    name: str
    size: int
    content_type: str
    meta: dict[str, Any]


class JobLinksOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    events: str
    result: str
    cancel: str


class JobOut(BaseModel):
    """A job, as every job endpoint shows it."""

    id: str
    status: JobStatus
    pipeline: str
    progress: ProgressOut
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    expires_at: datetime | None
    cancel_requested: bool
    ordering_key: str | None
    files: list[FileOut]
    usage: dict[str, Any]
    error: dict[str, Any] | None = Field(description="an RFC 9457 problem naming the stage and the reason")
    result: str | None = Field(description="the result's URL once there is one")
    links: JobLinksOut
    output: Any = Field(None, description="the result itself: only in the answer to a submit with `Prefer: wait`")


class JobPageOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None
    links: dict[str, str] | None = None


class PipelineOut(BaseModel):
    name: str
    description: str
    unit: str = Field(description="what the ETA is measured in: items, audio_seconds, messages...")
    accepts_files: bool
    input_schema: dict[str, Any]
    links: dict[str, str]


class PipelineListOut(BaseModel):
    pipelines: list[PipelineOut]


class ProblemOut(BaseModel):
    """An RFC 9457 problem (``application/problem+json``); some carry more members (``errors``, ``job_id``...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


def _headers(*names: str) -> dict[str, Any]:
    described = {
        "Location": "the job's URL",
        "Retry-After": "seconds before asking again: the job's estimated remaining time, in [1, 600]",
        "Preference-Applied": "`wait=N`: the wait applied for `Prefer: wait`",
        "Idempotent-Replayed": "`true` when an earlier request with the same Idempotency-Key made this job",
        "Expires": "when a finished job is deleted",
        "Link": 'the next page: `<url>; rel="next"`',
    }
    return {name: {"description": described[name], "schema": {"type": "string"}} for name in names}


JOB: dict[str, Any] = {"model": JobOut, "headers": _headers("Retry-After", "Expires")}
_SUBMIT_HEADERS = ("Location", "Retry-After", "Preference-Applied", "Idempotent-Replayed")
SUBMITTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobOut, "description": "Accepted", "headers": _headers(*_SUBMIT_HEADERS)},
    200: {
        "model": JobOut,
        "description": "Finished within `Prefer: wait=N`",
        "headers": _headers("Location", "Preference-Applied", "Idempotent-Replayed", "Expires"),
    },
}
__all__ = ["JOB", "SUBMITTED", "JobOut", "JobPageOut", "PipelineListOut", "PipelineOut", "ProblemOut"]
