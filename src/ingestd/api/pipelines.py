"""Routes under ``/v1/pipelines``: what can be run, and submitting a job to a pipeline.

Submitting stores the job and its files and answers; nothing slow happens before the 202.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import ValidationError

from ingestd import errors, sources, telemetry, webhooks
from ingestd.api import schedule, schemas, uploads, views
from ingestd.api.auth import current_tenant
from ingestd.models import NewJob, StoredFile, SubmitOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ingestd.pipeline import Pipeline
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as the Idempotency-Key draft's sf-string allows
_WAIT_RE = re.compile(r"(?:^|[;,\s])wait\s*=\s*(\d+(?:\.\d+)?)")
QUEUE_FULL_RETRY_AFTER = 10

SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"type": "object", "description": "The pipeline's input"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "input": {"type": "string", "description": "The pipeline's input as JSON"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


class QueueCap:
    """The per-tenant cap on queued jobs, without a count query on every submit.

    The store's count is read again when the one known here is older than ``RECOUNT_SECONDS``, or when it plus
    the jobs this process created since reaches the cap, so a 429 always rests on a fresh count. Submits through
    other API processes are seen within ``RECOUNT_SECONDS``: fleet-wide, the cap may be overshot by what they
    accept in that window (it protects the queue from a runaway client, it is not a quota).
    """

    RECOUNT_SECONDS = 1.0

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, int]] = {}  # tenant -> (when counted, count + created since)

    async def check(self, store: JobStore, tenant: str, cap: int) -> None:
        """Raise ``TooManyRequests`` (429 with Retry-After) when ``tenant`` has ``cap`` queued jobs."""
        now = time.monotonic()
        counted_at, count = self._known.get(tenant, (-1e9, 0))
        if now - counted_at > self.RECOUNT_SECONDS or count >= cap:
            counted_at, count = now, await store.count_queued(tenant)
            if len(self._known) > 100_000:  # many tenants: forget them all rather than grow without bound
                self._known.clear()
            self._known[tenant] = (counted_at, count)
        if count >= cap:
            raise errors.TooManyRequests(
                f"tenant {tenant!r} has {cap} queued jobs already", retry_after=QUEUE_FULL_RETRY_AFTER
            )

    def created(self, tenant: str) -> None:
        """Count a job this process just created."""
        counted_at, count = self._known.get(tenant, (-1e9, 0))
        self._known[tenant] = (counted_at, count + 1)


def pipeline_out(p: Pipeline) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "unit": p.unit,
        "accepts_files": p.accepts_files,
        "input_schema": p.input_model.model_json_schema(),
        "links": {"jobs": f"/v1/pipelines/{p.name}/jobs"},
    }


def _pipeline(request: Request, name: str) -> Pipeline:
    found: Pipeline | None = request.app.state.pipelines.get(name)
    if found is None:
        raise errors.NotFound(f"no pipeline named {name!r}")
    return found


@router.get(
    "",
    summary="List pipelines with their input JSON schemas",
    responses={200: {"model": schemas.PipelineListOut, "description": "Every pipeline"}},
)
async def list_pipelines(request: Request, tenant: Annotated[str, Depends(current_tenant)]) -> views.JSONOut:
    pipes = request.app.state.pipelines
    return views.JSONOut({"pipelines": [pipeline_out(pipes[n]) for n in sorted(pipes)]})


@router.get(
    "/{pipeline}",
    summary="One pipeline and its input JSON schema",
    responses={200: {"model": schemas.PipelineOut, "description": "The pipeline"}},
)
async def get_pipeline(
    request: Request, pipeline: str, tenant: Annotated[str, Depends(current_tenant)]
) -> views.JSONOut:
    return views.JSONOut(pipeline_out(_pipeline(request, pipeline)))


def parse_idempotency_key(value: str | None) -> str | None:
    """The key without sf-string quotes; 400 when it is empty, too long or not visible ASCII."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _KEY_RE.match(key):
        raise errors.BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


def parse_prefer_wait(prefer: str | None) -> float | None:
    """``Prefer: wait=N`` (RFC 7240), capped at 60 s."""
    if not prefer:
        return None
    match = _WAIT_RE.search(prefer)
    return min(float(match.group(1)), views.MAX_WAIT_SECONDS) if match else None


async def _read_body(request: Request, store: JobStore, limit: int) -> tuple[uploads.SubmitBody, Any]:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/form-data":
        boundary = re.search(r'boundary="?([^";]+)"?', content_type)
        if not boundary:
            raise errors.BadRequest("multipart/form-data without a boundary")
        collector = uploads.MultipartCollector(store.blobs, limit)
        return await collector.read(request, boundary.group(1).encode("latin-1")), collector
    if media == "application/json" or media.endswith("+json") or (not media and not await _has_body(request)):
        return await uploads.read_json(request, limit), None
    raise errors.UnsupportedMediaType("send application/json, or multipart/form-data with an `input` part and files")


async def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _validate(pipe: Pipeline, body: uploads.SubmitBody) -> Any:
    try:
        return pipe.input_model.model_validate(body.input)
    except ValidationError as exc:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise errors.InvalidInput(f"the input does not fit pipeline {pipe.name!r}", errors=errs) from exc


def _units(pipe: Pipeline, inp: Any, files: Sequence[StoredFile]) -> float:
    """How big the job is, for the ETA behind Retry-After (see ``Pipeline.unit``)."""
    if pipe.unit == "input_megabytes":
        return max(sum(f.size for f in files) / 1e6, 0.001)
    return float(pipe.units(inp))


async def _store_job(request: Request, pipe: Pipeline, tenant: str, key: str | None, opts: dict[str, Any]) -> Any:
    state = request.app.state
    store: JobStore = state.store
    body, collector = await _read_body(request, store, state.settings.max_upload_bytes)
    try:
        if pipe.accepts_files is False and body.files:
            raise errors.InvalidInput(f"pipeline {pipe.name!r} takes no files")
        inp = _validate(pipe, body)
        urls = sources.urls_of(inp)
        if pipe.requires_files and not body.files and not urls:
            raise errors.InvalidInput(
                f"pipeline {pipe.name!r} needs at least one file (send multipart/form-data, or name source_urls)"
            )
        await sources.check_at_submit(urls, state.settings)  # 422 for a URL that is refused already
        new = NewJob(
            pipeline=pipe.name,
            input=inp.model_dump(mode="json"),
            tenant=tenant,
            files=tuple(body.files),
            idempotency_key=key,
            payload_hash=body.payload_hash(pipe.name),
            retention_seconds=state.settings.retention_seconds,
            units=_units(pipe, inp, body.files),
            traceparent=telemetry.submit_traceparent(request.headers),
            ordering_key=opts.pop("ordering_key") or pipe.ordering_key(inp),
            **opts,
        )
        outcome: SubmitOutcome = await store.submit(new)
    except BaseException:
        if collector is not None:
            await collector.discard()
        raise
    if not outcome.created and collector is not None:
        await collector.discard()  # a replay: the first request's files are the job's
    if outcome.created:
        state.queue_cap.created(tenant)
        telemetry.observe_job_submitted(pipe.name)
    return outcome


@router.post(
    "/{pipeline}/jobs",
    status_code=202,
    summary="Submit a job (JSON input, or multipart: an `input` JSON part plus files)",
    openapi_extra=SUBMIT_BODY,
    responses=schemas.SUBMITTED,
)
async def submit_job(
    request: Request,
    pipeline: str,
    tenant: Annotated[str, Depends(current_tenant)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    prefer: Annotated[str | None, Header(alias="Prefer")] = None,
    priority: Annotated[int, Query(ge=-1000, le=1000)] = 0,
    ordering_key: Annotated[str | None, Query(max_length=200)] = None,
    webhook_url: Annotated[str | None, Query(max_length=2000, pattern=r"^https?://")] = None,
    deadline_seconds: Annotated[float | None, Query(gt=0, le=7 * 24 * 3600)] = None,
    run_at: Annotated[datetime | None, Query(description="start no earlier than this (ISO 8601, with a zone)")] = None,
    delay_seconds: Annotated[float | None, Query(ge=0, le=schedule.MAX_DELAY_SECONDS)] = None,
) -> views.JSONOut:
    pipe = _pipeline(request, pipeline)
    key = parse_idempotency_key(idempotency_key)
    wait = parse_prefer_wait(prefer)
    state = request.app.state
    store: JobStore = state.store
    if webhook_url is not None:  # 422 problem for a loopback/private/metadata target (after DNS resolution)
        await webhooks.check_target(webhook_url, state.settings)
    await state.queue_cap.check(store, tenant, state.settings.max_queued_per_tenant)
    opts = {
        "priority": priority,
        "ordering_key": ordering_key,
        "webhook_url": webhook_url,
        "deadline_seconds": deadline_seconds,
        "run_at": schedule.run_at_from(run_at, delay_seconds),
    }
    outcome = await _store_job(request, pipe, tenant, key, opts)
    job = outcome.job
    status = 202
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    if wait is not None:
        headers["Preference-Applied"] = f"wait={wait:g}"
        job = await views.wait_for_status_change(store, job.id, tenant, wait, until_terminal=True) or job
        status = 200 if job.terminal else 202
    retry_after, eta = await state.estimator.retry_after(store, job)
    headers.update(views.job_headers(job, retry_after))
    return views.JSONOut(views.render_job(job, eta, with_output=wait is not None), status_code=status, headers=headers)
