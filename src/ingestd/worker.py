"""``Worker``: claims jobs with a lease, runs each as an asyncio task, heartbeats, hands over on shutdown.

One worker process runs up to ``Settings.worker_concurrency`` jobs at once. Three loops share the event loop:

* the claim loop takes as many jobs as it has free slots (``claim_jobs``) and sleeps in ``wait_for_work`` when
  the queue is empty (waking on a submit, or every ``poll_seconds`` to pick up jobs whose lease expired);
* the heartbeat loop extends the leases every ``heartbeat_seconds``, cancels the task of a job whose
  cancellation was requested (the job ends ``canceled``), drops a job whose lease was lost (someone else owns
  it now: nothing is written) and purges expired jobs now and then;
* one task per job: validate the input, run the pipeline through a ``JobRunner``, ``finish``.

How a job ends: ``succeeded``; ``partial`` when map items failed for good (the result lists them under
``failed_items``); ``failed`` with an RFC 9457 problem naming the stage (``input``, a step key, or
``pipeline`` for a bug outside any step) on a permanent failure, a bug, an exhausted retry or the deadline;
``canceled`` when asked. A bug never takes the worker down. ``stop(grace)`` stops claiming, lets running jobs
go on for ``grace`` seconds, then cancels them and releases their leases so other workers resume at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pydantic

from ingestd import errors, sources, telemetry
from ingestd.limits import limiter_for
from ingestd.models import JSON, Job, JobStatus, utcnow
from ingestd.pipeline import Pipeline
from ingestd.runner import JobRunner, StepFailed, describe
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore
from ingestd.webhooks import dispatcher_for

log = logging.getLogger("ingestd.worker")

PURGE_EVERY_SECONDS = 60.0
STORE_RETRY_MAX_SECONDS = 300.0  # the longest wait before a job whose store calls failed runs again

Outcome = tuple[JobStatus, JSON | None, JSON | None]  # status, result, error


def problem(code: str, title: str, detail: str, status: int = 500, **extra: Any) -> JSON:
    """An RFC 9457 problem object, shaped like ``IngestdError.to_problem``."""
    return errors.problem_body(code, title, status, detail, extra)


def default_worker_id() -> str:
    """``host-pid-random``: unique per process, readable in ``live_workers``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class _Running:
    job: Job
    runner: JobRunner
    task: asyncio.Task[None] | None = None
    reason: str | None = None  # why we cancelled it: "canceled", "deadline", "lost", "shutdown"
    finishing: bool = False  # its outcome is being written: too late to cancel (a heartbeat may see it gone)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class Worker:
    """Runs jobs of ``pipelines`` from ``store``; ``await run()`` until ``stop()``.

    Args:
        store: an open job store.
        pipelines: the pipelines this process can run, by name (``Settings.pipelines`` narrows them).
        settings: concurrency, lease, heartbeat and shutdown grace.
        worker_id: a unique id for this worker (default: host, pid and a random suffix).
    """

    def __init__(
        self, store: JobStore, pipelines: Mapping[str, Pipeline], settings: Settings, worker_id: str | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        wanted = settings.pipelines
        self.pipelines = {n: p for n, p in pipelines.items() if wanted is None or n in wanted}
        self._names = sorted(self.pipelines)
        self._running: dict[str, _Running] = {}
        self._slot_freed = asyncio.Event()
        self._finishing = 0  # jobs whose outcome is being written: they no longer hold a slot
        self._stop_requested = asyncio.Event()
        self._shutdown: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.limiter = limiter_for(store, settings)  # fleet-wide provider limits and per-call timeouts
        self.webhooks = dispatcher_for(store, settings, self.worker_id)  # delivers the webhook outbox
        self.jobs_run = 0  # jobs this worker finished or handed back (for tests and stats)

    @property
    def running_jobs(self) -> list[str]:
        """Ids of the jobs running here now."""
        return list(self._running)

    # --- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Claim and run jobs until ``stop()`` (or until cancelled, which stops with no grace)."""
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat {self.worker_id}")
        if self.webhooks is not None:
            self.webhooks.start()
        try:
            await self._claim_loop()
        except asyncio.CancelledError:
            await asyncio.shield(self.stop(grace=0))
            raise
        await self.stop()

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give running jobs ``grace`` seconds (default ``Settings.shutdown_grace_seconds``),
        then cancel the rest and release their leases so other workers take them over at once."""
        self._stop_requested.set()
        if self._shutdown is None:
            wait = self.settings.shutdown_grace_seconds if grace is None else grace
            self._shutdown = asyncio.create_task(self._stop_jobs(wait))
        await asyncio.shield(self._shutdown)

    async def _stop_jobs(self, grace: float) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        left = list(self._running)  # may include jobs claimed while the stop was being requested
        tasks = [r.task for r in self._running.values() if r.task is not None]
        for job_id in left:
            self._cancel(job_id, "shutdown")
        await asyncio.gather(*tasks, return_exceptions=True)
        if left:
            with contextlib.suppress(errors.StoreError):
                await self.store.release(self.worker_id, left)
            log.info("released %d job(s) on shutdown: %s", len(left), left)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.limiter is not None:
            await self.limiter.close()

    # --- claiming -------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stop_requested.is_set():
            # A finishing job does no more work, so its slot is free while its commit is in flight: the next
            # claim overlaps the previous finishes instead of waiting for them (a busy worker stays busy).
            free = self.settings.worker_concurrency - (len(self._running) - self._finishing)
            if free <= 0:
                self._slot_freed.clear()
                await self._first_of(self._slot_freed.wait())
                continue
            try:
                jobs = await self.store.claim_jobs(
                    self.worker_id, pipelines=self._names, limit=free, lease_seconds=self.settings.lease_seconds
                )
            except errors.StoreError as exc:
                log.warning("claiming failed: %s", describe(exc))
                jobs = []
            for job in jobs:
                self._start(job)
            if len(jobs) < free:  # the queue looked empty: sleep until a submit (or poll for expired leases)
                await self._first_of(self.store.wait_for_work(self.settings.poll_seconds))

    async def _first_of(self, waiting: Any) -> None:
        """Await ``waiting`` unless a stop is requested first."""
        if self._stop_requested.is_set():
            waiting.close()
            return
        pending = {asyncio.ensure_future(waiting), asyncio.ensure_future(self._stop_requested.wait())}
        try:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in pending:
                fut.cancel()

    def _start(self, job: Job) -> None:
        # A job still running here, claimed again: its lease ran out (heartbeats late on a loaded machine) and this
        # worker's own claim took it as a new attempt. The heartbeat cannot tell (the lease is ours again), and the
        # fence refuses only the next write: drop the older execution now, or it goes on with its step (its
        # provider calls made twice) and, ending, would take the new execution's entry and heartbeats with it.
        self._cancel(job.id, "lost")
        runner = JobRunner(self.store, job, self.worker_id, limiter=self.limiter, prices=self.settings.prices)
        entry = _Running(job, runner)
        self._running[job.id] = entry
        entry.task = asyncio.create_task(self._run_job(entry), name=f"job {job.id}")
        if job.deadline_at is not None:
            delay = (job.deadline_at - utcnow()).total_seconds()
            loop = asyncio.get_running_loop()
            entry.timers.append(loop.call_later(max(0.0, delay), self._cancel, job.id, "deadline"))

    def _cancel(self, job_id: str, reason: str) -> None:
        entry = self._running.get(job_id)
        if entry is None or entry.reason is not None or entry.task is None or entry.finishing:
            return
        entry.reason = reason
        entry.runner.cancel_requested = True
        entry.task.cancel()

    # --- one job --------------------------------------------------------------------------------
    async def _run_job(self, entry: _Running) -> None:
        job = entry.job
        try:
            with telemetry.job_span(job):  # the root span of its steps; counts how the execution ended
                await self._run_traced(entry)
        except asyncio.CancelledError:
            if entry.reason is None:
                raise  # cancelled from outside (the event loop is closing): nothing of ours to write
        except Exception:  # our own bug: log it, keep the worker alive; the lease expires and another tries
            log.exception("worker failed on job %s", job.id)
        finally:
            for timer in entry.timers:
                timer.cancel()
            if entry.finishing:
                self._finishing -= 1
            if self._running.get(job.id) is entry:  # not a newer execution of the same job (_start)
                del self._running[job.id]
            self.jobs_run += 1
            self._slot_freed.set()

    async def _run_traced(self, entry: _Running) -> None:
        try:
            status, result, error = await self._execute(entry)
            await self._finish(entry, status, result, error)
        except asyncio.CancelledError:
            if entry.reason is None:
                raise
            await self._after_cancel(entry)
        except errors.LeaseLost as exc:  # the fence refused a write: another execution owns the job now
            telemetry.set_job_status("lost")
            log.warning("job %s: stale write refused (%s): lease lost; dropping it", entry.job.id, exc.extra)
        except errors.StoreError as exc:
            await self._retry_later(entry.job, exc)

    async def _execute(self, entry: _Running) -> Outcome:
        job, runner = entry.job, entry.runner
        pipeline = self.pipelines.get(job.pipeline)
        if pipeline is None:
            return _failed(problem("unknown-pipeline", "Unknown pipeline", f"no pipeline '{job.pipeline}' here"))
        if job.deadline_at is not None and job.deadline_at <= utcnow():
            return _failed(_deadline_problem(job))
        try:
            inp = pipeline.input_model.model_validate(job.input)
        except pydantic.ValidationError as exc:
            detail = f"the job's input does not match the '{pipeline.name}' pipeline: {exc.error_count()} error(s)"
            errs = exc.errors(include_url=False, include_context=False)
            return _failed(problem("invalid-input", "Invalid input", detail, 422, stage="input", errors=errs))
        return await self._run_pipeline(pipeline, runner, inp)

    async def _run_pipeline(self, pipeline: Pipeline, runner: JobRunner, inp: Any) -> Outcome:
        try:
            try:
                await sources.fetch_into(runner, inp, self.store.blobs, self.settings)  # source_urls, if any
                result = await pipeline.run(runner, inp)
            except BaseExceptionGroup as group:  # a task group (ctx.map): answer for the error that matters most
                raise surfaced(group) from group
        except StepFailed as exc:
            return _failed(exc.to_problem())
        except errors.JobCanceled:
            return JobStatus.CANCELED, None, _canceled_problem()
        except errors.LeaseLost:
            raise  # nothing more of this execution may be written (_run_traced)
        except errors.StoreError as exc:
            if not isinstance(exc, errors.StoreRejected):
                raise  # transient: the job is queued again (_retry_later)
            return _failed(_store_rejected_problem(exc))
        except Exception as exc:
            log.warning("job %s: pipeline %s raised %s", runner.job.id, pipeline.name, describe(exc))
            reason = describe(exc)
            detail = f"the '{pipeline.name}' pipeline failed outside any step: {reason}"
            return _failed(problem("pipeline-error", "The pipeline failed", detail, stage="pipeline", reason=reason))
        body: JSON = dict(result) if isinstance(result, Mapping) else {"result": result}
        if not runner.failed_items:
            return JobStatus.SUCCEEDED, body, None
        body["failed_items"] = [runner.failed_items[k] for k in sorted(runner.failed_items, key=_item_order)]
        return JobStatus.PARTIAL, body, None

    async def _finish(self, entry: _Running, status: JobStatus, result: JSON | None, error: JSON | None) -> None:
        usage = entry.runner.usage_summary()
        entry.finishing = True
        self._finishing += 1
        self._slot_freed.set()
        job = entry.job
        done = await self.store.finish(
            job.id, self.worker_id, status, result=result, error=error, usage=usage, attempt=job.attempt
        )
        telemetry.set_job_status(status if done else "lost", _failure_reason(status, error, result))
        if not done:
            log.warning("job %s: stale write refused (finish as %s): lease lost before it could finish", job.id, status)

    async def _after_cancel(self, entry: _Running) -> None:
        if entry.reason in ("lost", "shutdown"):
            telemetry.set_job_status("lost" if entry.reason == "lost" else "released")
            return  # not ours to finish: someone else owns the job now, or release() hands it back
        task = asyncio.current_task()
        if task is not None:  # we asked for this cancellation and handle it: finish() must not be cancelled
            task.uncancel()
        if entry.reason == "deadline":
            await self._finish(entry, *_failed(_deadline_problem(entry.job)))
        else:
            await self._finish(entry, JobStatus.CANCELED, None, _canceled_problem())

    async def _retry_later(self, job: Job, exc: errors.StoreError) -> None:
        log.warning("job %s: store failed (%s); retrying later", job.id, describe(exc))
        telemetry.set_job_status("retry")
        # Backoff per execution of the job, capped; a deadline, if the job has one, still ends it.
        delay = min(STORE_RETRY_MAX_SECONDS, self.settings.store_retry_seconds * 2 ** max(0, job.attempt - 1))
        run_at = utcnow() + timedelta(seconds=delay)
        with contextlib.suppress(errors.StoreError):  # the lease then expires and another worker resumes it
            if not await self.store.retry_later(job.id, self.worker_id, run_at, exc.to_problem(), attempt=job.attempt):
                log.warning("job %s: stale write refused (retry later): lease lost", job.id)

    # --- heartbeat ------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        last_purge = 0.0
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                beat = await self.store.heartbeat(self.worker_id, list(self._running), self.settings.lease_seconds)
                for job_id in beat.lost:
                    entry = self._running.get(job_id)
                    # not a job that just finished (not lost), nor one being dropped already (its task, stuck in a write
                    # to a cut-off server, ends when that write fails or is refused)
                    if entry is not None and not entry.finishing and entry.reason is None:
                        log.warning("job %s: lease lost; dropping it", job_id)
                        self._cancel(job_id, "lost")
                for job_id in beat.cancel_requested:
                    self._cancel(job_id, "canceled")
                if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
                    last_purge = time.monotonic()
                    await self.store.purge_expired()
            except errors.StoreError as exc:
                log.warning("heartbeat failed: %s", describe(exc))


def _failed(error: JSON) -> Outcome:
    return JobStatus.FAILED, None, error


def surfaced(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one error a failed task group stands for: a lost lease (nothing more may be written), else a
    cancellation, else a transient store error (the job is retried), else a step that failed for good, else the
    first."""
    leaves = list(_leaves(group))
    for kind in (errors.LeaseLost, errors.JobCanceled, asyncio.CancelledError, errors.StoreError, StepFailed):
        for leaf in leaves:
            if isinstance(leaf, kind) and not isinstance(leaf, errors.StoreRejected):
                return leaf
    return leaves[0]


def _leaves(group: BaseExceptionGroup[Any]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _store_rejected_problem(exc: errors.StoreError) -> JSON:
    reason = describe(exc)
    detail = f"the job store refused a write of this job: {reason}"
    return problem("store-rejected", "The job store refused the data", detail, stage="pipeline", reason=reason)


def _failure_reason(status: JobStatus, error: JSON | None, result: JSON | None) -> str | None:
    """What the log's WARNING line says about a failed or partial job (None: nothing went wrong)."""
    if status == JobStatus.FAILED and error:
        return f"stage {error.get('stage', '?')}: {error.get('reason') or error.get('detail', '')}"
    if status == JobStatus.PARTIAL and result:
        keys = [str(item["key"]) for item in result.get("failed_items", [])]
        return f"{len(keys)} item(s) failed: {', '.join(keys[:10])}"
    return None


def _canceled_problem() -> JSON:
    return problem("canceled", "The job was canceled", "cancellation was requested", 409)


def _deadline_problem(job: Job) -> JSON:
    deadline = job.deadline_at.isoformat() if job.deadline_at else None
    detail = f"the job did not finish before its deadline ({deadline})"
    return problem("deadline-exceeded", "Deadline exceeded", detail, 504, stage="deadline", deadline_at=deadline)


def _item_order(key: str) -> tuple[str, int]:
    stage, _, rest = key.partition("[")
    index = rest.rstrip("]")
    return stage, int(index) if index.isdigit() else -1


__all__ = ["Worker", "default_worker_id", "problem", "surfaced"]
