"""``POST /v1/jobs/{id}/retry``: a failed, partial or canceled job runs again as a new attempt of the same job.

Only what did not finish runs again: the store drops the failed steps' checkpoints (and the plain steps computed
from them, ``store.retry_plan``); every other checkpoint is restored, so finished steps never run or bill twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request

from ingestd import errors
from ingestd.api import schemas, views
from ingestd.api.auth import current_tenant

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post(
    "/{job_id}/retry",
    status_code=202,
    summary="Run a failed, partial or canceled job again: only its unfinished steps run",
    responses={202: {"model": schemas.JobOut, "description": "Accepted: the job is queued again"}},
)
async def retry_job(request: Request, job_id: str, tenant: Annotated[str, Depends(current_tenant)]) -> views.JSONOut:
    store: JobStore = request.app.state.store
    job = await store.retry_job(job_id, tenant)
    if job is None:
        raise errors.NotFound(f"no job {job_id!r}")
    retry_after, _ = await request.app.state.estimator.retry_after(store, job)
    headers = {**views.job_headers(job, retry_after), "Location": f"/v1/jobs/{job.id}"}
    return views.JSONOut(views.render_job(job, None), status_code=202, headers=headers)
