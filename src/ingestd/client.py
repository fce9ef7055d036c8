"""Python clients for the ingestd HTTP API, sync (``Client``) and async (``AsyncClient``), on httpx.

This module imports nothing from the server side (no store, worker or FastAPI), so it is all an application
needs::

    from ingestd.client import Client, Linear

    with Client("http://127.0.0.1:8000", api_key="ik_...") as client:
        job = client.submit("audio", files=["talk.wav"], input={"language": "en"})
        job = client.wait(job.id, strategy=Linear(first=300, every=600), deadline=3600)
        print(client.result(job.id))

``submit`` sends an ``Idempotency-Key`` (generated unless given) and reuses it when it retries after a failed
connection or a 502/503/504, so a retry never creates a second job. ``events`` follows the Server-Sent Events
stream and resumes with ``Last-Event-ID`` after a dropped connection. ``wait`` polls with a strategy (the
server's ``Retry-After`` by default) or follows the event stream, always within a deadline.

Protocol logic (building requests, parsing answers, SSE decoding, wait delays) is written once; only the I/O
is written twice.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
from standardwebhooks.webhooks import WebhookVerificationError  # re-exported for webhook receivers

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientEvent",
    "EventStream",
    "Exponential",
    "Linear",
    "RemoteJob",
    "ServerHint",
    "WaitStrategy",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]

TERMINAL = frozenset({"succeeded", "partial", "failed", "canceled"})
RETRY_STATUSES = frozenset({502, 503, 504})
FileSpec = str | Path | tuple[str, bytes | IO[bytes]] | tuple[str, bytes | IO[bytes], str]


class ApiError(Exception):
    """The server answered with an error; ``problem`` holds its RFC 9457 members."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem

    @property
    def code(self) -> str:
        return str(self.problem.get("code", ""))


class WaitTimeout(TimeoutError):
    """The deadline passed before the job finished; ``job`` is the last state seen."""

    def __init__(self, job: RemoteJob | None) -> None:
        super().__init__(f"job {job.id if job else '?'} did not finish before the deadline")
        self.job = job


@dataclass(frozen=True)
class RemoteJob:
    """A job as the server described it (the full JSON is in ``data``)."""

    id: str
    status: str
    pipeline: str
    progress: dict[str, Any]
    error: dict[str, Any] | None
    usage: dict[str, Any]
    links: dict[str, str]
    data: dict[str, Any]
    retry_after: float | None = None  # the server's hint, from the answer's Retry-After

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: dict[str, Any], retry_after: float | None = None) -> RemoteJob:
        return cls(
            id=data["id"],
            status=data["status"],
            pipeline=data["pipeline"],
            progress=data.get("progress") or {},
            error=data.get("error"),
            usage=data.get("usage") or {},
            links=data.get("links") or {},
            data=data,
            retry_after=retry_after,
        )


@dataclass(frozen=True)
class ClientEvent:
    """One event of a job: ``seq`` (1, 2, 3...), ``type`` (``job.progress``...), ``data``."""

    seq: int
    type: str
    data: dict[str, Any]
    at: str = ""


# --- wait strategies ----------------------------------------------------------------------------
class WaitStrategy(Protocol):
    def delay(self, attempt: int, hint: float | None) -> float:
        """Seconds to sleep before poll number ``attempt`` (0 = the first), given the server's hint."""
        ...


@dataclass(frozen=True)
class ServerHint:
    """Poll when the server's ``Retry-After`` says (its ETA), within [minimum, maximum]."""

    default: float = 2.0
    minimum: float = 0.2
    maximum: float = 600.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return min(self.maximum, max(self.minimum, self.default if hint is None else hint))


@dataclass(frozen=True)
class Linear:
    """First poll after ``first`` s, then every ``every`` s (a serverless orchestrator's schedule)."""

    first: float = 300.0
    every: float = 600.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return self.first if attempt == 0 else self.every


@dataclass(frozen=True)
class Exponential:
    """``initial * factor**attempt`` s, capped."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0

    def delay(self, attempt: int, hint: float | None) -> float:
        return float(min(self.cap, self.initial * self.factor ** min(attempt, 64)))


@dataclass(frozen=True)
class EventStream:
    """Follow the job's Server-Sent Events instead of polling."""


# --- protocol logic shared by both clients ----------------------------------------------------------
KEEPALIVE = ClientEvent(0, "keep-alive", {})  # a comment on the stream: a moment to check a deadline


@dataclass
class SSEDecoder:
    """Turns SSE lines into events; a comment (keep-alive) gives ``None`` so a caller can check its deadline."""

    _id: str | None = None
    _event: str = "message"
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ClientEvent | None:
        """An event when ``line`` completes one (``KEEPALIVE`` for a comment), else None."""
        if line.startswith(":"):
            return KEEPALIVE
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                self._id = value
            elif name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            return None
        if not self._data:
            return None
        payload = json.loads("\n".join(self._data))
        event = ClientEvent(int(self._id or payload.get("seq", 0)), self._event, payload.get("data", {}),
                            payload.get("at", ""))  # fmt: skip
        self._data, self._event = [], "message"
        return event


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})


def _job(response: httpx.Response) -> RemoteJob:
    _raise_for_problem(response)
    return RemoteJob.from_json(response.json(), _retry_after(response))


def _files_and_data(
    stack: ExitStack, input: Mapping[str, Any] | None, files: Sequence[FileSpec], meta: Mapping[str, Any] | None
) -> dict[str, Any]:
    """httpx keyword arguments for a submit body; files are opened here (again on each retry) and streamed."""
    if not files:
        return {"json": dict(input or {})}
    parts: list[tuple[str, Any]] = []
    for spec in files:
        if isinstance(spec, str | Path):
            path = Path(spec)
            parts.append(("file", (path.name, stack.enter_context(path.open("rb")))))
        else:
            parts.append(("file", spec))
    data = {"input": json.dumps(dict(input or {}))}
    data.update({f"meta.{name}": json.dumps(value) for name, value in (meta or {}).items()})
    return {"files": parts, "data": data}


def _submit_headers(idempotency_key: str | None, prefer_wait: float | None) -> dict[str, str]:
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    if prefer_wait is not None:
        headers["Prefer"] = f"wait={prefer_wait:g}"
    return headers


def _base_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _backoff(attempt: int) -> float:
    return float(min(5.0, 0.2 * 2**attempt))


# --- the clients ------------------------------------------------------------------------------------
class Client:
    """A synchronous client. Use as a context manager, or call ``close()``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0, retries: int = 3) -> None:
        self.retries = retries
        self.http = httpx.Client(base_url=base_url, headers=_base_headers(api_key), timeout=timeout)

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
        files: Sequence[FileSpec] = (),
        file_meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RemoteJob:
        """Submit a job; retries failed connections with the same Idempotency-Key."""
        headers = _submit_headers(idempotency_key, prefer_wait)
        for attempt in range(self.retries + 1):
            with ExitStack() as stack:
                body = _files_and_data(stack, input, files, file_meta)
                try:
                    url = f"/v1/pipelines/{pipeline}/jobs"
                    response = self.http.post(url, headers=headers, params=params, **body)
                except httpx.TransportError:
                    if attempt == self.retries:
                        raise
                    time.sleep(_backoff(attempt))
                    continue
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                return _job(response)
            time.sleep(_retry_after(response) or _backoff(attempt))
        raise AssertionError("unreachable")

    def get(self, job_id: str, *, wait: float | None = None) -> RemoteJob:
        """The job now (or, with ``wait``, after it changes status or ``wait`` s pass)."""
        return _job(self.http.get(f"/v1/jobs/{job_id}", params={"wait": wait} if wait else None))

    def result(self, job_id: str) -> Any:
        """The result of a finished job (``ApiError`` with a problem when there is none)."""
        response = self.http.get(f"/v1/jobs/{job_id}/result")
        _raise_for_problem(response)
        return response.json()

    def result_text(self, job_id: str, format: str) -> str:
        """An audio job's transcript as ``srt``, ``vtt`` or ``txt`` (``ApiError`` when it has none)."""
        response = self.http.get(f"/v1/jobs/{job_id}/result", params={"format": format})
        _raise_for_problem(response)
        return response.text

    def cancel(self, job_id: str) -> RemoteJob:
        return _job(self.http.post(f"/v1/jobs/{job_id}/cancel"))

    def delete(self, job_id: str) -> None:
        _raise_for_problem(self.http.delete(f"/v1/jobs/{job_id}"))

    def jobs(self, **filters: Any) -> dict[str, Any]:
        """One page of jobs: ``{"jobs": [...], "next_cursor": ...}``; filters as in ``GET /v1/jobs``."""
        response = self.http.get("/v1/jobs", params={k: v for k, v in filters.items() if v is not None})
        _raise_for_problem(response)
        data: dict[str, Any] = response.json()
        return data

    def _stream_once(self, job_id: str, after: int, read_timeout: float) -> Iterator[ClientEvent]:
        decoder = SSEDecoder()
        timeout = httpx.Timeout(self.http.timeout.connect, read=read_timeout)
        headers = {"Last-Event-ID": str(after), "Accept": "text/event-stream"}
        with self.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_problem(response)
            for line in response.iter_lines():
                item = decoder.feed(line)
                if item is not None:
                    yield item

    def events(self, job_id: str, *, after: int = 0, deadline: float | None = None) -> Iterator[ClientEvent]:
        """Every event after ``after`` until ``job.finished``, reconnecting (with Last-Event-ID) when dropped."""
        for item in self._follow(job_id, after, deadline):
            if item is not KEEPALIVE:
                yield item

    def _follow(self, job_id: str, after: int, deadline: float | None) -> Iterator[ClientEvent]:
        end = time.monotonic() + deadline if deadline is not None else None
        failures = 0
        while True:
            left = 60.0 if end is None else end - time.monotonic()
            if left <= 0:
                raise WaitTimeout(None)
            got = 0
            try:
                for item in self._stream_once(job_id, after, min(left, 60.0)):
                    yield item
                    if item is not KEEPALIVE:
                        after, failures, got = item.seq, 0, got + 1
                        if item.type == "job.finished":
                            return
            except (httpx.TransportError, json.JSONDecodeError):
                failures += 1
                if failures > self.retries + 3:
                    raise
                time.sleep(_backoff(failures))
                continue
            if not got and self.get(job_id).terminal:
                return  # the stream closed with nothing new and the job is over: resumed past its last event

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


class AsyncClient:
    """The asyncio client: the same methods as ``Client``, awaited."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0, retries: int = 3) -> None:
        self.retries = retries
        self.http = httpx.AsyncClient(base_url=base_url, headers=_base_headers(api_key), timeout=timeout)

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
        files: Sequence[FileSpec] = (),
        file_meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RemoteJob:
        """Submit a job; retries failed connections with the same Idempotency-Key."""
        headers = _submit_headers(idempotency_key, prefer_wait)
        for attempt in range(self.retries + 1):
            with ExitStack() as stack:
                body = _files_and_data(stack, input, files, file_meta)
                try:
                    url = f"/v1/pipelines/{pipeline}/jobs"
                    response = await self.http.post(url, headers=headers, params=params, **body)
                except httpx.TransportError:
                    if attempt == self.retries:
                        raise
                    await asyncio.sleep(_backoff(attempt))
                    continue
            if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                return _job(response)
            await asyncio.sleep(_retry_after(response) or _backoff(attempt))
        raise AssertionError("unreachable")

    async def get(self, job_id: str, *, wait: float | None = None) -> RemoteJob:
        return _job(await self.http.get(f"/v1/jobs/{job_id}", params={"wait": wait} if wait else None))

    async def result(self, job_id: str) -> Any:
        response = await self.http.get(f"/v1/jobs/{job_id}/result")
        _raise_for_problem(response)
        return response.json()

    async def cancel(self, job_id: str) -> RemoteJob:
        return _job(await self.http.post(f"/v1/jobs/{job_id}/cancel"))

    async def delete(self, job_id: str) -> None:
        _raise_for_problem(await self.http.delete(f"/v1/jobs/{job_id}"))

    async def jobs(self, **filters: Any) -> dict[str, Any]:
        response = await self.http.get("/v1/jobs", params={k: v for k, v in filters.items() if v is not None})
        _raise_for_problem(response)
        data: dict[str, Any] = response.json()
        return data

    async def _stream_once(self, job_id: str, after: int) -> AsyncIterator[ClientEvent]:
        decoder = SSEDecoder()
        headers = {"Last-Event-ID": str(after), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(self.http.timeout.connect, read=None)
        async with self.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                _raise_for_problem(resp)
            async for line in resp.aiter_lines():
                item = decoder.feed(line)
                if item is not None and item is not KEEPALIVE:
                    yield item

    async def events(self, job_id: str, *, after: int = 0) -> AsyncIterator[ClientEvent]:
        """Every event after ``after`` until ``job.finished``, reconnecting (with Last-Event-ID) when dropped.
        Bound it with ``asyncio.timeout`` when it needs a deadline."""
        failures = 0
        while True:
            got = 0
            try:
                async for event in self._stream_once(job_id, after):
                    after, failures, got = event.seq, 0, got + 1
                    yield event
                    if event.type == "job.finished":
                        return
            except (httpx.TransportError, json.JSONDecodeError):
                failures += 1
                if failures > self.retries + 3:
                    raise
                await asyncio.sleep(_backoff(failures))
                continue
            if not got and (await self.get(job_id)).terminal:
                return  # the stream closed with nothing new and the job is over: resumed past its last event

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


# --- webhooks (owned by ops) ------------------------------------------------------------------------------------
def verify_webhook(payload: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """Check a webhook ingestd sent (Standard Webhooks) and return its body; raise ``WebhookVerificationError``.

    ``payload`` is the raw request body (verify before parsing it), ``headers`` the request headers (any case),
    ``secret`` the tenant's ``whsec_...`` secret (``GET /v1/webhooks/secret``). The signature must match and the
    ``webhook-timestamp`` be within 5 minutes of now (replays of old deliveries fail). Deliveries are retried
    with the same ``webhook-id``: drop ids you have already handled::

        body = verify_webhook(request.body, request.headers, secret)
        if body["data"]["status"] == "succeeded": ...
    """
    from standardwebhooks.webhooks import Webhook

    data = payload.decode() if isinstance(payload, bytes) else payload
    verified = Webhook(secret).verify(data, dict(headers.items()))
    if not isinstance(verified, dict):
        raise WebhookVerificationError("the webhook body is not a JSON object")
    return verified
