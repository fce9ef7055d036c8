"""``POST /v1/jobs/{id}/replay?from=STEP``: a new job from a copy of a finished job's input and files and of its
checkpoints before STEP.

"Before STEP" is in the order the job's stages first finished a step (a stage is a step's name, ``transcribe`` for
the items ``transcribe[0]``...; finishing, not starting, because overlapped stages start together: the audio
pipeline's ``structure`` items start at once and wait for their clips' transcripts): the finished checkpoints of
every stage that got a step done before STEP did are copied, STEP and every later stage run again. Replaying an
audio job from ``structure`` keeps its decoding, speech detection, speakers and transcripts (never paid twice) and
structures them again, e.g. with another model or prompt. The files are copied (each job owns its own), and the
new job starts with a ``job.replayed`` event naming the job and the stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ingestd import errors
from ingestd.api import schemas, views
from ingestd.api.auth import current_tenant
from ingestd.models import NewJob, Step, StoredFile, utcnow
from ingestd.store.protocol import ReplayStore

if TYPE_CHECKING:
    from ingestd.models import Job
    from ingestd.store.protocol import JobStore

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# Submitted this far in the future, then made due with its checkpoints in one transaction: no worker can take
# the new job before its checkpoints are there (a crash in between leaves it to run in full a day later).
_HOLD = timedelta(days=1)


def stage_of(key: str) -> str:
    return key.split("[", 1)[0]


def steps_before(steps: Mapping[str, Step], stage: str) -> list[Step] | None:
    """The finished checkpoints of the stages that first finished a step before ``stage`` did (None: no step of
    that stage)."""
    first: dict[str, datetime] = {}
    for step in steps.values():
        name = stage_of(step.key)
        first[name] = min(first.get(name, step.finished_at), step.finished_at)
    if stage not in first:
        return None
    return sorted(
        (s for s in steps.values() if s.ok and first[stage_of(s.key)] < first[stage]), key=lambda s: s.started_at
    )


async def _copy_files(store: JobStore, files: tuple[StoredFile, ...]) -> tuple[StoredFile, ...]:
    copies = []
    for f in files:
        ref, size = await store.blobs.put(store.blobs.open(f.blob))
        copies.append(dataclasses.replace(f, blob=ref, size=size))
    return tuple(copies)


def _new_job(job: Job, files: tuple[StoredFile, ...], settings: Any) -> NewJob:
    return NewJob(
        pipeline=job.pipeline,
        input=job.input,
        tenant=job.tenant,
        files=files,
        priority=job.priority,
        ordering_key=job.ordering_key,
        webhook_url=job.webhook_url,
        retention_seconds=settings.retention_seconds,
        units=job.units,
        run_at=utcnow() + _HOLD,
    )


@router.post(
    "/{job_id}/replay",
    status_code=202,
    summary="A new job from a finished job's input and its checkpoints before a step",
    responses={202: {"model": schemas.JobOut, "description": "Accepted: the new job"}},
)
async def replay_job(
    request: Request,
    job_id: str,
    tenant: Annotated[str, Depends(current_tenant)],
    stage: Annotated[str, Query(alias="from", min_length=1, max_length=200, description="the first step to run")],
) -> views.JSONOut:
    store: JobStore = request.app.state.store
    job = await store.get_job(job_id, tenant)
    if job is None:
        raise errors.NotFound(f"no job {job_id!r}")
    if not job.terminal or not isinstance(store, ReplayStore):
        raise errors.Conflict(
            f"job {job_id!r} is {job.status.value}: replay a job that has ended", status_now=job.status
        )
    steps = await store.load_steps(job_id)
    keep = steps_before(steps, stage)
    if keep is None:
        stages = sorted({stage_of(k) for k in steps})
        raise errors.InvalidInput(f"job {job_id!r} has no step {stage!r} (its steps: {', '.join(stages) or 'none'})")
    outcome = await store.submit(_new_job(job, await _copy_files(store, job.files), request.app.state.settings))
    new = outcome.job
    await store.seed_steps(new.id, [dataclasses.replace(s, job_id=new.id) for s in keep])
    await store.append_events(new.id, [("job.replayed", {"of": job_id, "from": stage, "kept": [s.key for s in keep]})])
    new = await store.get_job(new.id, tenant) or new
    retry_after, _ = await request.app.state.estimator.retry_after(store, new)
    headers = {**views.job_headers(new, retry_after), "Location": f"/v1/jobs/{new.id}"}
    return views.JSONOut(views.render_job(new, None), status_code=202, headers=headers)
