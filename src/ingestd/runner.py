"""``JobRunner``: the ``pipeline.Context`` of one job execution.

It checkpoints every step through the store (``save_step``, with ``step.finished`` in the same transaction),
returns a stored output instead of running a finished step again, retries transient failures with exponential
backoff and full jitter (``step.retrying``), records failed ``map`` items as failed checkpoints
(``item.failed``) so a resumed job does not retry them forever, reports ``job.progress`` at a bounded rate and
adds up provider usage per step, per stage and per job.

A step that fails for good raises ``StepFailed`` (a ``PermanentError``) whose ``problem`` names the step; the
worker turns it into the job's RFC 9457 error.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import email.utils
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from ingestd import errors, telemetry, usage
from ingestd.limits import Limiter
from ingestd.map_progress import ProgressBoard
from ingestd.models import JSON, Job, Progress, Step, StoredFile, utcnow
from ingestd.pipeline import MapResult, RetryPolicy
from ingestd.settings import Price
from ingestd.store.protocol import JobStore

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_RETRY = RetryPolicy()


class StepFailed(errors.PermanentError):
    """A step failed for good (a permanent error, an exhausted transient one, or a bug in its code)."""

    code = "step-failed"
    title = "A pipeline step failed"

    def __init__(self, key: str, reason: str, *, cause: str, attempts: int) -> None:
        detail = f"step '{key}' failed after {attempts} attempt(s): {reason}"
        super().__init__(detail, stage=key, reason=reason, cause=cause, attempts=attempts)
        self.key = key


@dataclasses.dataclass
class _StepState:
    """What the step running in the current task has accumulated (usage of its provider calls)."""

    key: str
    usage: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


# The step whose code is running in this task; map items run in their own tasks, so each sees its own step.
_current_step: contextvars.ContextVar[_StepState | None] = contextvars.ContextVar("ingestd_step", default=None)


def stage_of(key: str) -> str:
    """The stage a step key belongs to: ``transcribe[7]`` → ``transcribe``."""
    return key.split("[", 1)[0]


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` may help: explicit transient errors, timeouts, connection errors, 429/5xx."""
    if isinstance(exc, errors.TransientError | TimeoutError | httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code == 429 or code >= 500
    return False


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds a provider asked us to wait (``TransientError.retry_after`` or an HTTP ``Retry-After``)."""
    if isinstance(exc, errors.TransientError):
        return exc.retry_after
    if isinstance(exc, httpx.HTTPStatusError):
        value = exc.response.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - utcnow()).total_seconds()) if when.tzinfo else None
    return None


def backoff_delay(policy: RetryPolicy, failures: int, retry_after: float | None) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(failures-1))], never less than a provider's Retry-After."""
    cap = min(policy.max_seconds, policy.base_seconds * 2 ** (failures - 1))
    delay = random.uniform(0.0, cap)
    return max(delay, retry_after) if retry_after is not None else delay


def describe(exc: BaseException) -> str:
    """A one-line reason: ``PermanentError: unreadable audio``."""
    text = str(exc)
    if isinstance(exc, errors.IngestdError):
        text = exc.detail
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def usage_of(answer: Any) -> dict[str, float]:
    """Numeric counters of an answer's ``usage`` (an attribute or a key), or nothing."""
    usage: Any = answer.get("usage") if isinstance(answer, Mapping) else getattr(answer, "usage", None)
    if dataclasses.is_dataclass(usage) and not isinstance(usage, type):
        usage = dataclasses.asdict(usage)
    elif isinstance(usage, BaseModel):
        usage = usage.model_dump()
    if not isinstance(usage, Mapping):
        return {}
    return {k: float(v) for k, v in usage.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _add(into: dict[str, float], counters: Mapping[str, float]) -> None:
    for name, value in counters.items():
        into[name] = into.get(name, 0.0) + value


class JobRunner:
    """Runs one execution of one job: the ``Context`` a pipeline sees.

    Args:
        store: the job store.
        job: the claimed job.
        worker_id: the worker holding the job's lease (checkpoints are written under it).
        limiter: the process's fleet-wide provider limiter (limits, per-call timeouts, hedging), if any.
        prices: the operator's price table (``Settings.prices``), to put a ``cost`` on each call's usage.
    """

    def __init__(
        self,
        store: JobStore,
        job: Job,
        worker_id: str,
        *,
        limiter: Limiter | None = None,
        prices: Mapping[str, Mapping[str, Price]] | None = None,
    ) -> None:
        self._store = store
        self._job = job
        self._worker_id = worker_id
        self._limiter = limiter
        self._prices = prices or {}
        self._steps: dict[str, Step] | None = None
        self._loading: asyncio.Future[dict[str, Step]] | None = None
        self._loose_usage: dict[str, dict[str, float]] = {}  # provider calls made outside any step
        self.failed_items: dict[str, JSON] = {}  # key -> {"key", "index", "error"}
        self.cancel_requested = False
        self._progress = ProgressBoard(self._write_progress)

    @property
    def job(self) -> Job:
        """The job being run."""
        return self._job

    def add_files(self, files: Sequence[StoredFile]) -> None:
        """Files the worker fetched for the job (``ingestd.sources``): the pipeline sees them after its own."""
        self._job = dataclasses.replace(self._job, files=(*self._job.files, *files))

    async def _checkpoints(self) -> dict[str, Step]:
        # Loaded lazily and once: a pipeline that never calls step() (a no-op) costs no query.
        if self._steps is None:
            if self._loading is None:
                self._loading = asyncio.ensure_future(self._store.load_steps(self._job.id))
            self._steps = await self._loading
        return self._steps

    # --- steps --------------------------------------------------------------------------------
    async def step(
        self,
        key: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> T:
        """``pipeline.Context.step``."""
        return await self._step(key, fn, timeout, retry, item=False)

    async def _step(
        self, key: str, fn: Callable[[], Awaitable[T]], timeout: float | None, retry: RetryPolicy | None, *, item: bool
    ) -> T:
        """``step``; a plain step that fails for good writes ``step.failed`` (a map item: ``item.failed``)."""
        stored = (await self._checkpoints()).get(key)
        if stored is not None:
            if not stored.ok:
                reason = str((stored.error or {}).get("reason", "failed in an earlier execution"))
                raise StepFailed(key, reason, cause="earlier", attempts=stored.attempts)
            return stored.output  # type: ignore[no-any-return]
        if self.cancel_requested:
            raise errors.JobCanceled()
        started_at = utcnow()
        await self._append("step.started", {"key": key})
        state = _StepState(key)
        token = _current_step.set(state)
        try:
            with telemetry.step_span(key) as traced:  # span, duration metric, a log line with the timing
                output, attempts = await self._attempts(key, fn, timeout, retry or DEFAULT_RETRY)
        except StepFailed as exc:
            if not item:  # an item's failure is checkpointed with item.failed by _map_item
                seconds = round((utcnow() - started_at).total_seconds(), 6)
                failed: JSON = {"key": key, "attempts": exc.extra.get("attempts", 1), "seconds": seconds}
                await self._append("step.failed", {**failed, "error": exc.to_problem()})
            raise
        finally:
            _current_step.reset(token)
        finished_at = utcnow()
        step = Step(self._job.id, key, True, output, None, attempts, started_at, finished_at, dict(state.usage))
        seconds = round((finished_at - started_at).total_seconds(), 6)
        event: JSON = {"key": key, "attempts": attempts, "seconds": seconds}
        if traced.limiter_wait_seconds:  # for the dashboard's waterfall
            event["limiter_wait_seconds"] = round(traced.limiter_wait_seconds, 6)
        saved = await self._save(step, "step.finished", event)
        (await self._checkpoints())[key] = saved
        return saved.output  # type: ignore[no-any-return]

    async def _attempts(
        self, key: str, fn: Callable[[], Awaitable[T]], timeout: float | None, policy: RetryPolicy
    ) -> tuple[T, int]:
        attempt = 1
        while True:
            try:
                async with asyncio.timeout(timeout):
                    return await fn(), attempt
            except (StepFailed, errors.LeaseLost):
                raise  # a nested step already failed for good and said why; or this execution lost its lease
            except errors.StoreError as exc:
                if not isinstance(exc, errors.StoreRejected):
                    raise  # transient: the whole job is queued again (the worker's _retry_later), not this step
                raise StepFailed(key, describe(exc), cause=exc.code, attempts=attempt) from exc
            except Exception as exc:
                if not is_transient(exc):
                    cause = exc.code if isinstance(exc, errors.IngestdError) else "internal"
                    raise StepFailed(key, describe(exc), cause=cause, attempts=attempt) from exc
                if attempt >= policy.attempts:
                    raise StepFailed(key, describe(exc), cause="transient", attempts=attempt) from exc
                delay = backoff_delay(policy, attempt, retry_after_of(exc))
                data = {"key": key, "attempt": attempt, "delay": round(delay, 3), "reason": describe(exc)}
                await self._append("step.retrying", data)
                telemetry.step_retrying(attempt, exc, delay)
                await asyncio.sleep(delay)
                attempt += 1

    # --- fan-out ----------------------------------------------------------------------------------
    async def map(
        self,
        name: str,
        items: Sequence[Any],
        fn: Callable[[int, Any], Awaitable[T]],
        *,
        concurrency: int = 8,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> MapResult[T]:
        """``pipeline.Context.map``. An item that fails for good (any exception but cancellation) is checkpointed
        as failed with an ``item.failed`` event, left out of ``ok`` and listed in the job's result (``partial``)."""
        result: MapResult[T] = MapResult()
        checkpoints = await self._checkpoints()
        restored = {i for i in range(len(items)) if f"{name}[{i}]" in checkpoints}  # a resumed job: done already
        progress = self._progress.track(name, len(items), done=len(restored))
        indexes = iter(range(len(items)))

        async def drain() -> None:
            for index in indexes:  # one shared iterator: each index is taken by exactly one drainer
                await self._map_item(name, index, items[index], fn, timeout, retry, result)
                if index not in restored:
                    progress.advance()

        async with progress:
            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, min(concurrency, len(items)))):
                    group.create_task(drain())
        return result

    async def _map_item(
        self,
        name: str,
        index: int,
        item: Any,
        fn: Callable[[int, Any], Awaitable[T]],
        timeout: float | None,
        retry: RetryPolicy | None,
        result: MapResult[T],
    ) -> None:
        key = f"{name}[{index}]"
        stored = (await self._checkpoints()).get(key)
        if stored is not None and not stored.ok:
            self._record_failed(key, index, stored.error or {})
            result.failed[index] = stored.error or {}
            return
        try:
            result.ok[index] = await self._step(key, lambda: fn(index, item), timeout, retry, item=True)
        except StepFailed as exc:
            problem = exc.to_problem()
            await self._save_failed_item(key, index, problem, exc.extra.get("attempts", 1))
            result.failed[index] = problem

    async def _save_failed_item(self, key: str, index: int, problem: JSON, attempts: int) -> None:
        now = utcnow()
        step = Step(self._job.id, key, False, None, problem, attempts, now, now, {})
        event = {"key": key, "index": index, "error": problem}
        saved = await self._save(step, "item.failed", event)
        (await self._checkpoints())[key] = saved
        self._record_failed(key, index, saved.error or problem)

    def _record_failed(self, key: str, index: int, problem: JSON) -> None:
        self.failed_items[key] = {"key": key, "index": index, "error": problem}

    # --- everything else a pipeline can do -------------------------------------------------------
    async def run_cpu(self, fn: Callable[..., R], *args: Any) -> R:
        """Run CPU-heavy ``fn(*args)`` in a thread, so the event loop (and the heartbeat) keeps going.

        A thread cannot be interrupted: on cancellation the job stops waiting for it at once, and the
        thread's result is dropped when it returns. Keep such calls short (one chunk of work each).
        """
        return await asyncio.to_thread(fn, *args)

    async def call(self, provider: str, fn: Callable[[], Awaitable[R]], *, tenant_fair: bool = True) -> R:
        """Make one provider call within the fleet-wide limits of ``provider`` (fair between tenants unless
        ``tenant_fair`` is False) and record its usage (``usage`` attribute or key, priced) on the current step."""

        async def traced() -> R:
            with telemetry.provider_span(provider):  # the call itself, after the limiter's wait
                return await fn()

        waited = 0.0
        if self._limiter is None:
            answer = await traced()
        else:
            tenant = self._job.tenant if tenant_fair else "*"
            called = await self._limiter.call(provider, traced, tenant=tenant, cost_of=_tokens_used)
            answer, waited = called.answer, called.waited_seconds
            telemetry.observe_limiter_wait(provider, waited)  # also adds it to the step's waterfall entry
        counters = usage.priced(self._prices, provider, usage.model_of(answer), {"calls": 1, **usage_of(answer)})
        if waited:
            counters["limiter_wait_seconds"] = waited
        self.add_usage(provider, **counters)
        return answer

    def add_usage(self, provider: str, **counters: float) -> None:
        """Record usage counters of ``provider`` on the current step (or on the job outside any step)."""
        state = _current_step.get()
        usage = state.usage if state is not None else self._loose_usage
        _add(usage.setdefault(provider, {}), counters)
        telemetry.record_usage(provider, counters, pipeline=self._job.pipeline)

    async def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Record the job's progress (``job.progress``)."""
        await self._progress.write(stage, done, total)

    async def _write_progress(self, stage: str, done: int, total: int) -> None:
        progress = Progress(stage, done, total)
        await self._store.set_progress(self._job.id, self._worker_id, progress, attempt=self._job.attempt)

    # Every write is fenced by this execution's lease (worker and attempt): once the job was claimed again, a late
    # write is refused (``LeaseLost``) and the worker drops the job. Step events carry ``job_attempt``, so a log
    # shows which execution wrote each.
    async def _append(self, etype: str, data: JSON) -> None:
        event = {**data, "job_attempt": self._job.attempt}
        await self._store.append_events(
            self._job.id, [(etype, event)], worker_id=self._worker_id, attempt=self._job.attempt
        )

    async def _save(self, step: Step, etype: str, data: JSON) -> Step:
        event = {**data, "job_attempt": self._job.attempt}
        return await self._store.save_step(step, self._worker_id, [(etype, event)], attempt=self._job.attempt)

    async def file_path(self, file: StoredFile) -> str:
        """A local path holding one of the job's input files."""
        return await self._store.blobs.local_path(file.blob)

    # --- what the worker reads at the end --------------------------------------------------------
    def usage_summary(self) -> JSON:
        """Usage of every checkpointed step, by stage and overall:
        ``{"total": {counter: n}, "providers": {provider: {counter: n}}, "stages": {stage: {provider: {...}}}}``.
        """
        total: dict[str, float] = {}
        providers: dict[str, dict[str, float]] = {}
        stages: dict[str, dict[str, dict[str, float]]] = {}
        for stage, provider, counters in self._usage_rows():
            _add(total, counters)
            _add(providers.setdefault(provider, {}), counters)
            _add(stages.setdefault(stage, {}).setdefault(provider, {}), counters)
        return {"total": total, "providers": providers, "stages": stages} if total else {}

    def _usage_rows(self) -> Iterator[tuple[str, str, Mapping[str, float]]]:
        for step in (self._steps or {}).values():
            for provider, counters in (step.usage or {}).items():
                yield stage_of(step.key), provider, counters
        for provider, counters in self._loose_usage.items():
            yield "pipeline", provider, counters


def _tokens_used(answer: Any) -> float:
    """Rate units of an answer for a provider limited in tokens per interval."""
    return usage.tokens_of(usage_of(answer))


__all__ = ["JobRunner", "StepFailed", "backoff_delay", "is_transient", "retry_after_of", "stage_of", "usage_of"]
