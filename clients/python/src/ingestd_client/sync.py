"""The synchronous client: ``Client``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import httpx

from ingestd_client import wire
from ingestd_client.errors import WaitTimeout
from ingestd_client.memory import Memory
from ingestd_client.types import BatchResult, ClientEvent, RemoteJob
from ingestd_client.waiting import EventStream, ServerHint, WaitStrategy


class Client:
    """A synchronous client. Use as a context manager, or call ``close()``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0, retries: int = 3) -> None:
        self.retries = retries
        self.http = httpx.Client(base_url=base_url, headers=wire.base_headers(api_key), timeout=timeout)
        self.memory = Memory(self.http)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def submit(
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
                    response = self.http.post(url, headers=headers, params=params, **body)
                except httpx.TransportError:
                    if attempt == self.retries:
                        raise
                    time.sleep(wire.backoff(attempt))
                    continue
            if response.status_code not in wire.RETRY_STATUSES or attempt == self.retries:
                return wire.job(response)
            time.sleep(wire.retry_after(response) or wire.backoff(attempt))
        raise AssertionError("unreachable")

    def submit_batch(
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
                response = self.http.post(url, headers=headers, json=body)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(wire.backoff(attempt))
                continue
            if response.status_code not in wire.RETRY_STATUSES or attempt == self.retries:
                result: BatchResult = wire.json_of(response)
                return result
            time.sleep(wire.retry_after(response) or wire.backoff(attempt))
        raise AssertionError("unreachable")

    def get(self, job_id: str, *, wait: float | None = None) -> RemoteJob:
        """The job now (or, with ``wait``, after it changes status or ``wait`` s pass)."""
        return wire.job(self.http.get(f"/v1/jobs/{job_id}", params={"wait": wait} if wait else None))

    def result(self, job_id: str) -> Any:
        """The result of a finished job (``ApiError`` with a problem when there is none)."""
        response = self.http.get(f"/v1/jobs/{job_id}/result")
        wire.raise_for_problem(response)
        return response.json()

    def result_text(self, job_id: str, format: str) -> str:
        """An audio job's transcript as ``srt``, ``vtt`` or ``txt`` (``ApiError`` when it has none)."""
        response = self.http.get(f"/v1/jobs/{job_id}/result", params={"format": format})
        wire.raise_for_problem(response)
        return response.text

    def cancel(self, job_id: str) -> RemoteJob:
        return wire.job(self.http.post(f"/v1/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> RemoteJob:
        """Run a failed, partial or canceled job again; only its unfinished steps run (``ApiError`` 409 otherwise)."""
        return wire.job(self.http.post(f"/v1/jobs/{job_id}/retry"))

    def replay(self, job_id: str, from_step: str) -> RemoteJob:
        """A new job from a copy of an ended job's input, files and checkpoints before ``from_step``: only that
        step and what follows it run (``POST /v1/jobs/{id}/replay?from=STEP``)."""
        return wire.job(self.http.post(f"/v1/jobs/{job_id}/replay", params={"from": from_step}))

    def delete(self, job_id: str) -> None:
        wire.raise_for_problem(self.http.delete(f"/v1/jobs/{job_id}"))

    def jobs(self, **filters: Any) -> dict[str, Any]:
        """One page of jobs: ``{"jobs": [...], "next_cursor": ...}``; filters as in ``GET /v1/jobs``."""
        response = self.http.get("/v1/jobs", params={k: v for k, v in filters.items() if v is not None})
        wire.raise_for_problem(response)
        data: dict[str, Any] = response.json()
        return data

    def _stream_once(self, job_id: str, after: int, read_timeout: float) -> Iterator[ClientEvent]:
        decoder = wire.SSEDecoder()
        timeout = httpx.Timeout(self.http.timeout.connect, read=read_timeout)
        headers = {"Last-Event-ID": str(after), "Accept": "text/event-stream"}
        with self.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                wire.raise_for_problem(response)
            for line in response.iter_lines():
                item = decoder.feed(line)
                if item is not None:
                    yield item

    def events(self, job_id: str, *, after: int = 0, deadline: float | None = None) -> Iterator[ClientEvent]:
        """Every event after ``after`` until the last ``job.finished``, reconnecting (with Last-Event-ID) when
        dropped."""
        for item in self._follow(job_id, after, deadline):
            if item is not wire.KEEPALIVE:
                yield item

    def _follow(self, job_id: str, after: int, deadline: float | None) -> Iterator[ClientEvent]:
        end = time.monotonic() + deadline if deadline is not None else None
        failures = 0
        while True:
            left = 60.0 if end is None else end - time.monotonic()
            if left <= 0:
                raise WaitTimeout(None)
            got, finished = 0, False
            try:
                for item in self._stream_once(job_id, after, min(left, 60.0)):
                    yield item
                    if item is not wire.KEEPALIVE:
                        after, failures, got = item.seq, 0, got + 1
                        finished = item.type == "job.finished"
            except (httpx.TransportError, json.JSONDecodeError):
                failures += 1
                if failures > self.retries + 3:
                    raise
                time.sleep(wire.backoff(failures))
                continue
            # The server closes the stream after the last job.finished (a retried job's goes on into its next
            # attempt), or at once when resumed past the last event of a finished job.
            if finished or (not got and self.get(job_id).terminal):
                return

    def wait(self, job_id: str, *, strategy: WaitStrategy | EventStream | None = None, deadline: float = 600.0
             ) -> RemoteJob:  # fmt: skip
        """Return the finished job; ``WaitTimeout`` if it is still running after ``deadline`` s."""
        strategy = strategy or ServerHint()
        end = time.monotonic() + deadline
        if isinstance(strategy, EventStream):
            try:
                for _ in self._follow(job_id, 0, deadline):
                    pass
            except WaitTimeout:
                raise WaitTimeout(self.get(job_id)) from None
            return self.get(job_id)
        attempt = 0
        while not (job := self.get(job_id)).terminal:
            left = end - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job)
            time.sleep(min(left, strategy.delay(attempt, job.retry_after)))
            attempt += 1
        return job
