"""``POST /v1/pipelines/{name}/jobs:batch``: up to 1,000 jobs of one pipeline in one request.

Each item is submitted as ``POST /v1/pipelines/{name}/jobs`` would submit it, with its own idempotency key (the
item's ``idempotency_key``, else the request's ``Idempotency-Key`` header and the item's index,
``<key>:<index>``), so a client that retries a batch after a lost answer gets the same jobs, made once. Items are
independent: the answer lists, in order, each item's job (created or replayed) or its RFC 9457 problem; a bad
item does not stop the others. The tenant's queue cap is checked once, for the whole batch.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field, ValidationError

from ingestd import errors, sources, telemetry, webhooks
from ingestd.api import schedule, views
from ingestd.api.auth import current_tenant
from ingestd.api.pipelines import parse_idempotency_key
from ingestd.models import NewJob, SubmitOutcome

if TYPE_CHECKING:
    from ingestd.pipeline import Pipeline
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])

MAX_BATCH = 1000
CONCURRENCY = 16  # submits in flight at once (SQLite groups them into a few commits; PostgreSQL uses its pool)


class BatchItem(BaseModel):
    """One job: its input and the options ``POST /v1/pipelines/{name}/jobs`` takes as query parameters."""

    input: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    priority: int = Field(default=0, ge=-1000, le=1000)
    ordering_key: str | None = Field(default=None, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    deadline_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    run_at: datetime | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=schedule.MAX_DELAY_SECONDS)


class BatchIn(BaseModel):
    jobs: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


def _payload_hash(pipeline: str, inp: dict[str, Any]) -> str:
    """As a single submit's (``uploads.SubmitBody.payload_hash``, no files): a batch item and a single submit
    with the same key and input are the same request."""
    doc = {"pipeline": pipeline, "input": inp, "files": []}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Batch:
    """One batch request's shared state: the pipeline, the tenant, the key prefix, checked webhook URLs."""

    def __init__(self, request: Request, pipe: Pipeline, tenant: str, key: str | None) -> None:
        self.state = request.app.state
        self.pipe, self.tenant, self.key = pipe, tenant, key
        self.traceparent = telemetry.submit_traceparent(request.headers)  # every job of the batch joins it
        self.checked: dict[str, asyncio.Task[object]] = {}
        self.gate = asyncio.Semaphore(CONCURRENCY)

    async def _check_url(self, url: str) -> None:
        if url not in self.checked:  # each URL resolved and checked once per batch
            self.checked[url] = asyncio.ensure_future(webhooks.check_target(url, self.state.settings))
        await asyncio.shield(self.checked[url])

    def _new_job(self, index: int, item: BatchItem) -> NewJob:
        pipe = self.pipe
        try:
            inp = pipe.input_model.model_validate(item.input)
        except ValidationError as exc:
            errs = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise errors.InvalidInput(f"the input does not fit pipeline {pipe.name!r}", errors=errs) from exc
        if pipe.requires_files and not sources.urls_of(inp):
            raise errors.InvalidInput(f"pipeline {pipe.name!r} needs files: name source_urls, or use POST .../jobs")
        data = inp.model_dump(mode="json")
        key = item.idempotency_key or (f"{self.key}:{index}" if self.key else None)
        return NewJob(
            pipeline=pipe.name,
            input=data,
            tenant=self.tenant,
            idempotency_key=parse_idempotency_key(key),
            payload_hash=_payload_hash(pipe.name, item.input),
            retention_seconds=self.state.settings.retention_seconds,
            units=float(pipe.units(inp)),
            priority=item.priority,
            ordering_key=item.ordering_key or pipe.ordering_key(inp),
            webhook_url=item.webhook_url,
            deadline_seconds=item.deadline_seconds,
            run_at=schedule.run_at_from(item.run_at, item.delay_seconds),
            traceparent=self.traceparent,
        )

    async def submit(self, index: int, item: BatchItem) -> dict[str, Any]:
        """The item's entry in the answer: its job, or its problem."""
        try:
            if item.webhook_url is not None:
                await self._check_url(item.webhook_url)
            new = self._new_job(index, item)
            await sources.check_at_submit(new.input.get("source_urls") or [], self.state.settings)
            async with self.gate:
                store: JobStore = self.state.store
                outcome: SubmitOutcome = await store.submit(new)
        except errors.IngestdError as exc:
            return {"index": index, "problem": exc.to_problem()}
        if outcome.created:
            self.state.queue_cap.created(self.tenant)
            telemetry.observe_job_submitted(self.pipe.name)
        job = outcome.job
        return {
            "index": index,
            "job": {"id": job.id, "status": job.status.value, "links": {"self": f"/v1/jobs/{job.id}"}},
            "replayed": not outcome.created,
        }


@router.post(
    "/{pipeline}/jobs:batch",
    summary="Submit up to 1,000 jobs: each item's job (or its problem), in order",
)
async def submit_batch(
    request: Request,
    pipeline: str,
    body: BatchIn,
    tenant: Annotated[str, Depends(current_tenant)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> views.JSONOut:
    found: Pipeline | None = request.app.state.pipelines.get(pipeline)
    if found is None:
        raise errors.NotFound(f"no pipeline named {pipeline!r}")
    state = request.app.state
    await state.queue_cap.check(state.store, tenant, state.settings.max_queued_per_tenant)
    batch = _Batch(request, found, tenant, parse_idempotency_key(idempotency_key))
    results = await asyncio.gather(*(batch.submit(i, item) for i, item in enumerate(body.jobs)))
    accepted = sum(1 for r in results if "job" in r)
    return views.JSONOut({"accepted": accepted, "rejected": len(results) - accepted, "jobs": results})


__all__ = ["MAX_BATCH", "router"]
