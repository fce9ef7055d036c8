"""The asyncio client: ``AsyncClient``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import httpx

from ingestd_client import wire
from ingestd_client.errors import WaitTimeout
from ingestd_client.memory import AsyncMemory
from ingestd_client.types import BatchResult, ClientEvent, RemoteJob
from ingestd_client.waiting import EventStream, ServerHint, WaitStrategy


class AsyncClient:
    """The asyncio client: the same methods as ``Client``, awaited."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0, retries: int = 3) -> None:
        self.retries = retries
        self.http = httpx.AsyncClient(base_url=base_url, headers=wire.base_headers(api_key), timeout=timeout)
        self.memory = AsyncMemory(self.http)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(
        self,
        pipeline: str,
        input: Mapping[str, Any] | None = None,
        *,
        files: Sequence[wire.FileSpec] = (),
        file_meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RemoteJob:
        """Submit a job; retries failed connections with the same Idempotency-Key."""
        headers = wire.submit_headers(idempotency_key, prefer_wait)
        for attempt in range(self.retries + 1):
            with ExitStack() as stack:
                body = wire.files_and_data(stack, input, files, file_meta)
                try:
                    url = f"/v1/pipelines/{pipeline}/jobs"
                    response = await self.http.post(url, headers=headers, params=params, **body)
                except httpx.TransportError:
                    if attempt == self.retries:
                        raise
                    await asyncio.sleep(wire.backoff(attempt))
                    continue
            if response.status_code not in wire.RETRY_STATUSES or attempt == self.retries:
                return wire.job(response)
            await asyncio.sleep(wire.retry_after(response) or wire.backoff(attempt))
        raise AssertionError("unreachable")

    async def submit_batch(
        self, pipeline: str, items: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> BatchResult:
        """Submit up to 1,000 jobs: ``items`` are ``{"input": {...}, "idempotency_key"?, "priority"?, "run_at"?,
        "delay_seconds"?, "webhook_url"?, ...}``. An item without its own key gets ``<idempotency_key>:<index>``
        (a fresh ``idempotency_key`` is made when none is given), so the retries of a lost answer make each job
        once. Each entry of the answer holds the item's ``job`` or its ``problem``."""
        headers = wire.submit_headers(idempotency_key, None)
        body = wire.batch_body(items)
        url = f"/v1/pipelines/{pipeline}/jobs:batch"
        for attempt in range(self.retries + 1):
            try:
                response = await self.http.post(url, headers=headers, json=body)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(wire.backoff(attempt))
                continue
            if response.status_code not in wire.RETRY_STATUSES or attempt == self.retries:
                result: BatchResult = wire.json_of(response)
                return result
            await asyncio.sleep(wire.retry_after(response) or wire.backoff(attempt))
        raise AssertionError("unreachable")

    async def get(self, job_id: str, *, wait: float | None = None) -> RemoteJob:
        return wire.job(await self.http.get(f"/v1/jobs/{job_id}", params={"wait": wait} if wait else None))

    async def result(self, job_id: str) -> Any:
        response = await self.http.get(f"/v1/jobs/{job_id}/result")
        wire.raise_for_problem(response)
        return response.json()

    async def cancel(self, job_id: str) -> RemoteJob:
        return wire.job(await self.http.post(f"/v1/jobs/{job_id}/cancel"))

    async def retry(self, job_id: str) -> RemoteJob:
        return wire.job(await self.http.post(f"/v1/jobs/{job_id}/retry"))

    async def replay(self, job_id: str, from_step: str) -> RemoteJob:
        """A new job from a copy of an ended job's input, files and checkpoints before ``from_step``: only that
        step and what follows it run (``POST /v1/jobs/{id}/replay?from=STEP``)."""
        return wire.job(await self.http.post(f"/v1/jobs/{job_id}/replay", params={"from": from_step}))

    async def delete(self, job_id: str) -> None:
        wire.raise_for_problem(await self.http.delete(f"/v1/jobs/{job_id}"))

    async def jobs(self, **filters: Any) -> dict[str, Any]:
        response = await self.http.get("/v1/jobs", params={k: v for k, v in filters.items() if v is not None})
        wire.raise_for_problem(response)
        data: dict[str, Any] = response.json()
        return data

    async def _stream_once(self, job_id: str, after: int) -> AsyncIterator[ClientEvent]:
        decoder = wire.SSEDecoder()
        headers = {"Last-Event-ID": str(after), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self.http.timeout.connect, read=None)
        async with self.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                wire.raise_for_problem(resp)
            async for line in resp.aiter_lines():
                item = decoder.feed(line)
                if item is not None and item is not wire.KEEPALIVE:
                    yield item

    async def events(self, job_id: str, *, after: int = 0) -> AsyncIterator[ClientEvent]:
        """Every event after ``after`` until the last ``job.finished``, reconnecting (with Last-Event-ID) when dropped.
        Bound it with ``asyncio.timeout`` when it needs a deadline."""
        failures = 0
        while True:
            got, finished = 0, False
            try:
                async for event in self._stream_once(job_id, after):
                    after, failures, got = event.seq, 0, got + 1
                    finished = event.type == "job.finished"
                    yield event
            except (httpx.TransportError, json.JSONDecodeError):
                failures += 1
                if failures > self.retries + 3:
                    raise
                await asyncio.sleep(wire.backoff(failures))
                continue
            # The server closes the stream after the last job.finished (a retried job's goes on into its next
            # attempt), or at once when resumed past the last event of a finished job.
            if finished or (not got and (await self.get(job_id)).terminal):
                return

    async def wait(
        self, job_id: str, *, strategy: WaitStrategy | EventStream | None = None, deadline: float = 600.0
    ) -> RemoteJob:
        """Return the finished job; ``WaitTimeout`` if it is still running after ``deadline`` s."""
        strategy = strategy or ServerHint()
        if isinstance(strategy, EventStream):
            try:
                async with asyncio.timeout(deadline):
                    async for _ in self.events(job_id):
                        pass
            except TimeoutError:
                raise WaitTimeout(await self.get(job_id)) from None
            return await self.get(job_id)
        end = time.monotonic() + deadline
        attempt = 0
        while not (job := await self.get(job_id)).terminal:
            left = end - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job)
            await asyncio.sleep(min(left, strategy.delay(attempt, job.retry_after)))
            attempt += 1
        return job
