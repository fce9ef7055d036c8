"""Protocol logic shared by both clients, written once: request bodies and headers, answers and problems, the
Server-Sent Events decoder, retry delays. Only the I/O is written twice (``sync``, ``aio``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from ingestd_client.errors import ApiError
from ingestd_client.types import ClientEvent, RemoteJob

RETRY_STATUSES = frozenset({502, 503, 504})
FileSpec = str | Path | tuple[str, bytes | IO[bytes]] | tuple[str, bytes | IO[bytes], str]
KEEPALIVE = ClientEvent(0, "keep-alive", {})  # a comment on the stream: a moment to check a deadline


@dataclass
class SSEDecoder:
    """Turns SSE lines into events; a comment (keep-alive) gives ``KEEPALIVE`` so a caller can check its deadline."""

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


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_for_problem(response: httpx.Response) -> None:
    """``ApiError`` carrying the server's problem for a 4xx/5xx answer."""
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})


def job(response: httpx.Response) -> RemoteJob:
    raise_for_problem(response)
    return RemoteJob.from_json(response.json(), retry_after(response))


def json_of(response: httpx.Response) -> Any:
    raise_for_problem(response)
    return response.json()


def files_and_data(
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


def submit_headers(idempotency_key: str | None, prefer_wait: float | None) -> dict[str, str]:
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    if prefer_wait is not None:
        headers["Prefer"] = f"wait={prefer_wait:g}"
    return headers


def batch_body(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON of ``POST /v1/pipelines/{name}/jobs:batch``: each item ``{"input", "idempotency_key"?, ...}``."""
    return {"jobs": [dict(item) for item in items]}


def base_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def backoff(attempt: int) -> float:
    return float(min(5.0, 0.2 * 2**attempt))


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the Nones, times as ISO 8601."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items() if v is not None}


def memory_path(user_id: str, session_id: str | None = None, message_id: str | None = None) -> str:
    """``/v1/memory/{user}`` (or one session or message of it) for a delete."""
    if session_id is not None and message_id is not None:
        raise ValueError("delete a session or a message, not both")
    base = user_path(user_id)
    if session_id is not None:
        return f"{base}/sessions/{quote(session_id, safe='')}"
    return f"{base}/messages/{quote(message_id, safe='')}" if message_id is not None else base


def user_path(user_id: str, *rest: str) -> str:
    """``/v1/memory/{user_id}/...`` with the user id escaped (it may hold any character)."""
    return "/".join([f"/v1/memory/{quote(user_id, safe='')}", *rest])
