"""How a pipeline is written: plain async Python against a ``Context``.

A pipeline is a ``Pipeline`` (a name, a Pydantic input model, an async ``run``). ``run`` calls ``ctx.step`` for
each stage and ``ctx.map`` to fan out; every step has a key (``decode``, ``transcribe[7]``) under which its
JSON-serialisable output is checkpointed. When a job resumes after a crash, a finished step returns its stored
output and is not run again, so a provider is never paid twice for it::

    async def run(ctx: Context, inp: DemoInput) -> JSON:
        items = await ctx.step("prepare", lambda: prepare(inp))
        done = await ctx.map("work", items, lambda i, item: work(ctx, item), concurrency=4)
        return await ctx.step("collect", lambda: collect(done))

Failures: ``TransientError`` (and timeouts, connection errors, HTTP 429/5xx from providers) are retried with
exponential backoff and jitter, honouring ``retry_after``; ``PermanentError`` fails the step at once. A failed
``map`` item is recorded (``item.failed``) and the job ends ``partial`` listing it; a failed plain step fails
the job. ``JobCanceled`` is raised inside a job whose cancellation was requested.

The implementation of ``Context`` lives in ``ingestd.runner``; this module only defines the contract, so
pipelines import nothing from the worker.

A registered pipeline names its implementation by module path (``DeferredRun``): a process that only lists or
validates pipelines (the API, the CLI) never imports their stages (numpy, PyAV, models); a worker imports them
when the first job of that pipeline runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from ingestd.models import JSON, Job, StoredFile

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one step after transient failures: ``base * 2**n`` seconds with full jitter, capped."""

    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0


@dataclass(frozen=True)
class MapResult(Generic[T]):
    """What a ``map`` step gives back: outputs of the items that succeeded, errors of those that failed."""

    ok: dict[int, T] = field(default_factory=dict)
    failed: dict[int, JSON] = field(default_factory=dict)

    def values(self) -> list[T]:
        """Outputs of the successful items, in item order."""
        return [self.ok[i] for i in sorted(self.ok)]


class Context(Protocol):
    """What a running pipeline can do. One per job execution."""

    @property
    def job(self) -> Job: ...

    async def step(
        self,
        key: str,
        fn: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> T:
        """Run ``fn`` once per job (checkpointed under ``key``); on resume, return the stored output."""
        ...

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
        """Run ``fn(index, item)`` for every item, at most ``concurrency`` at once, each checkpointed under
        ``name[index]``. Items that fail for good are recorded and listed in the job's result."""
        ...

    async def run_cpu(self, fn: Callable[..., R], *args: Any) -> R:
        """Run CPU-heavy ``fn(*args)`` off the event loop (a thread), so heartbeats never stall."""
        ...

    async def call(self, provider: str, fn: Callable[[], Awaitable[R]], *, tenant_fair: bool = True) -> R:
        """Make one provider call: within the fleet-wide limits of ``provider``, traced, and its usage (an
        attribute or key ``usage`` of the answer, when present) recorded on the current step."""
        ...

    def add_usage(self, provider: str, **counters: float) -> None:
        """Record usage (``tokens_in``, ``tokens_out``, ``audio_seconds``, ``calls``) on the current step."""
        ...

    async def progress(self, stage: str, done: int = 0, total: int = 0) -> None:
        """Report progress (``job.progress`` event, the job's ``progress`` field)."""
        ...

    async def file_path(self, file: StoredFile) -> str:
        """A local path holding one of the job's input files."""
        ...


@dataclass(frozen=True)
class Pipeline:
    """A named pipeline: its input model, the function that runs it, and how to size its input for ETAs."""

    name: str
    input_model: type[BaseModel]
    run: Callable[[Context, Any], Awaitable[JSON]]
    description: str = ""
    # What ``units`` measures ("messages", "items"...). ``"input_megabytes"``: the API sizes the job by its uploaded
    # files instead (an audio file's duration is only known after decoding, and nothing slow happens before the 202).
    unit: str = "items"
    units: Callable[[Any], float] = lambda _inp: 1.0
    accepts_files: bool = False
    requires_files: bool = False  # a submit without a file is refused (422) instead of failing in the worker
    ordering_key: Callable[[Any], str | None] = lambda _inp: None


class DeferredRun:
    """A pipeline's ``run`` named by ``"package.module:Class"`` instead of imported: the module is imported and
    ``Class(*args)`` built on first use (the first job, or ``__self__``), then its ``run`` is called.

    It stands for the bound method ``Class(*args).run``: calling it runs a job, ``__self__`` is the instance.
    """

    def __init__(self, target: str, *args: Any) -> None:
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"pipeline implementation {target!r} is not of the form 'package.module:Class'")
        self.target = target
        self._args = args
        self._owner: Any = None

    @property
    def __self__(self) -> Any:
        """The implementation's instance (its module imported and the instance built on first access)."""
        if self._owner is None:
            module, _, attribute = self.target.partition(":")
            self._owner = getattr(importlib.import_module(module), attribute)(*self._args)
        return self._owner

    @property
    def built(self) -> Any:
        """The instance if it was built already, else None (asking does not build it)."""
        return self._owner

    async def __call__(self, ctx: Context, inp: Any) -> JSON:
        """Run one job: ``Class(*args).run(ctx, inp)``."""
        result: JSON = await self.__self__.run(ctx, inp)
        return result

    def __repr__(self) -> str:
        return f"DeferredRun({self.target!r})"
