"""Routes under ``/v1/jobs``: status (with long-poll and a 303 to the result), result, cancel, delete, list.

Another tenant's job is answered exactly like a missing one (404), so job ids leak nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ingestd import errors
from ingestd.api import schemas, views
from ingestd.api.auth import current_tenant
from ingestd.models import Job, JobFilter, JobStatus

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
Tenant = Annotated[str, Depends(current_tenant)]


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


async def _job_or_404(store: JobStore, job_id: str, tenant: str) -> Job:
    job = await store.get_job(job_id, tenant)
    if job is None:
        raise errors.NotFound(f"no job {job_id!r}")
    return job


async def _job_answer(request: Request, job: Job, status_code: int = 200) -> views.JSONOut:
    retry_after, eta = await request.app.state.estimator.retry_after(_store(request), job)
    headers = views.job_headers(job, retry_after)
    return views.JSONOut(views.render_job(job, eta), status_code=status_code, headers=headers)


@router.get(
    "/{job_id}",
    summary="A job's status, progress, usage and links",
    responses={
        200: schemas.JOB,
        303: {"description": "With `?redirect=true`, once the job has a result: see Location"},
    },
)
async def get_job(
    request: Request,
    job_id: str,
    tenant: Tenant,
    wait: Annotated[float | None, Query(ge=0, le=60, description="Long-poll: wait up to N s for a change")] = None,
    redirect: Annotated[bool, Query(description="Answer 303 to the result once the job has one")] = False,
) -> Response:
    store = _store(request)
    job = await _job_or_404(store, job_id, tenant)
    if wait and not job.terminal:
        job = await views.wait_for_status_change(store, job_id, tenant, wait) or job
    if redirect and job.status in views.HAS_RESULT:
        return Response(status_code=303, headers={"Location": f"/v1/jobs/{job.id}/result"})
    return await _job_answer(request, job)


@router.get(
    "/{job_id}/result",
    summary="The result of a finished job, or a problem saying why there is none",
    responses={
        200: {"description": "JSON, or with `?format=srt|vtt|txt` an audio job's transcript as subtitles or text"}
    },
)
async def get_result(
    request: Request,
    job_id: str,
    tenant: Tenant,
    format: Annotated[
        Literal["json", "srt", "vtt", "txt"] | None,
        Query(description="`srt`, `vtt` or `txt`: an audio job's speaker-labelled transcript (409 when it has none)"),
    ] = None,
) -> Response:
    store = _store(request)
    job = await _job_or_404(store, job_id, tenant)
    if job.status in views.HAS_RESULT and format not in (None, "json"):
        return _transcript(job, format)
    if job.status in views.HAS_RESULT:
        return views.JSONOut(job.result if job.result is not None else {}, headers=views.job_headers(job, None))
    if not job.terminal:
        retry_after, _ = await request.app.state.estimator.retry_after(store, job)
        raise errors.JobNotFinished(
            f"job {job.id} is {job.status.value}", job_status=job.status.value, retry_after=retry_after
        )
    raise errors.ResultUnavailable(f"job {job.id} {job.status.value}", job_status=job.status.value, error=job.error)


def _transcript(job: Job, fmt: str) -> Response:
    """The result's transcript as SRT, WebVTT or text (``subtitles``); 409 when the result has none."""
    from ingestd.pipelines.audio import subtitles  # the audio pipeline's package: imported by the first export

    try:
        body = subtitles.render(job.result or {}, fmt)
    except subtitles.NoTranscript as exc:
        raise errors.Conflict(f"job {job.id} has no transcript to export as {fmt}: {exc}") from exc
    headers = {**views.job_headers(job, None), "Content-Disposition": f'inline; filename="{job.id}.{fmt}"'}
    media_type = subtitles.FORMATS[fmt] + "; charset=utf-8"
    return Response(body.encode(), media_type=media_type, headers=headers)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Ask a job to stop (idempotent)",
    responses={202: {"model": schemas.JobOut, "description": "Accepted"}},
)
async def cancel_job(request: Request, job_id: str, tenant: Tenant) -> views.JSONOut:
    job = await _store(request).request_cancel(job_id, tenant)
    if job is None:
        raise errors.NotFound(f"no job {job_id!r}")
    answer = await _job_answer(request, job, 202)
    answer.headers["Location"] = f"/v1/jobs/{job.id}"
    return answer


@router.delete("/{job_id}", status_code=204, summary="Delete a finished job and its files")
async def delete_job(request: Request, job_id: str, tenant: Tenant) -> Response:
    if await _store(request).delete_job(job_id, tenant) is None:
        raise errors.NotFound(f"no job {job_id!r}")
    return Response(status_code=204)


@router.get(
    "",
    summary="The tenant's jobs, newest first, filtered and cursor-paginated",
    responses={200: {"model": schemas.JobPageOut, "description": "One page of jobs"}},
)
async def list_jobs(
    request: Request,
    tenant: Tenant,
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
    status: JobStatus | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> views.JSONOut:
    flt = JobFilter(tenant, pipeline, status, created_after, created_before)
    page = await _store(request).list_jobs(flt, limit=limit, cursor=cursor)
    body: dict[str, object] = {"jobs": [views.render_job(j) for j in page.jobs], "next_cursor": page.next_cursor}
    headers: dict[str, str] = {}
    if page.next_cursor:
        params = {k: v for k, v in request.query_params.items() if k != "cursor"}
        next_url = f"/v1/jobs?{urlencode({**params, 'cursor': page.next_cursor})}"
        body["links"] = {"next": next_url}
        headers["Link"] = f'<{next_url}>; rel="next"'
    return views.JSONOut(body, headers=headers)
