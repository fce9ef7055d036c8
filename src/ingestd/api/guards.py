"""Input no handler should ever see: refused at the door, as problems, before anything is stored.

``RequestGuard`` (ASGI middleware) answers before routing:

* headers larger than ``Settings.max_header_bytes`` in total: 431;
* a NUL character in the path: 404 (no resource has one in its name);
* a NUL character in a query parameter: 422 naming it (PostgreSQL text cannot hold NUL, so a NUL that reached
  the store would fail there, late and as a 5xx);
* a JSON body (up to ``GUARDED_BODY_BYTES``) nested deeper than ``MAX_JSON_DEPTH`` or holding a NUL in any
  string or key: 422 naming the field. Larger bodies are the submit route's, which checks them itself
  (``check_json``) as it parses them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingestd.api import problems

MAX_JSON_DEPTH = 64  # arrays and objects inside each other; orjson cannot write more than 254
GUARDED_BODY_BYTES = 1024 * 1024
NUL = "\x00"
_NUL_MSG = "contains a NUL character (\\u0000), which cannot be stored"
_JSON_TYPES = ("application/json", "+json")

Loc = list[str | int]


def json_error(value: Any, prefix: Loc, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any] | None:
    """The first problem of a parsed JSON document as a validation error (``loc``, ``msg``, ``type``), or None."""
    stack: list[tuple[Any, Loc]] = [(value, prefix)]
    while stack:
        item, loc = stack.pop()
        if len(loc) - len(prefix) > max_depth:
            return {"loc": loc, "msg": f"nested deeper than {max_depth} levels", "type": "json_too_deep"}
        if isinstance(item, str):
            if NUL in item:
                return {"loc": loc, "msg": f"the string {_NUL_MSG}", "type": "string_nul"}
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    return {"loc": [*loc, key], "msg": f"the key {_NUL_MSG}", "type": "string_nul"}
                stack.append((child, [*loc, key]))
        elif isinstance(item, list):
            stack.extend((child, [*loc, i]) for i, child in enumerate(item))
    return None


def _query_error(query_string: bytes) -> dict[str, Any] | None:
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    for name, value in pairs:
        if NUL in name or NUL in value:
            return {"loc": ["query", name.replace(NUL, "")], "msg": f"the parameter {_NUL_MSG}", "type": "string_nul"}
    return None


def _header_bytes(scope: Scope) -> int:
    return sum(len(name) + len(value) for name, value in scope.get("headers", ()))


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = bytes(value).decode("latin-1").split(";")[0].strip().lower()
            return media == _JSON_TYPES[0] or media.endswith(_JSON_TYPES[1])
    return False


class RequestGuard:
    """Refuses oversized headers, NUL in the path or query, and hostile JSON bodies (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None and _is_json(scope):
            messages = [m async for m in _body_messages(receive)]
            refusal = _body_refusal(scope, messages)
            receive = _replay(messages, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> problems.ProblemResponse | None:
        path = scope.get("path", "")
        size = _header_bytes(scope)
        if size > self.max_header_bytes:
            detail = f"the request's headers are {size} bytes, over the limit of {self.max_header_bytes}"
            return problems.ProblemResponse(problems.problem(431, detail, code="headers-too-large", instance=path), 431)
        if NUL in path:
            body = problems.problem(404, "no resource has a NUL character in its path", instance=path.replace(NUL, ""))
            return problems.ProblemResponse(body, status_code=404)
        error = _query_error(scope.get("query_string", b""))
        if error is not None:
            return _invalid(path, "a query parameter is not valid", error)
        return None


def _invalid(path: str, detail: str, error: dict[str, Any]) -> problems.ProblemResponse:
    body = problems.problem(422, detail, code="invalid-input", instance=path, errors=[error])
    return problems.ProblemResponse(body, status_code=422)


async def _body_messages(receive: Receive) -> AsyncIterator[Message]:
    """The body's messages up to ``GUARDED_BODY_BYTES`` (the rest stays unread, for the route to stream)."""
    seen = 0
    while True:
        message = await receive()
        yield message
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False) or seen > GUARDED_BODY_BYTES:
            return


def _body_refusal(scope: Scope, messages: list[Message]) -> problems.ProblemResponse | None:
    if not messages or messages[-1].get("more_body", False) or messages[-1]["type"] != "http.request":
        return None  # too large to check here, or the client went away: the route deals with it
    raw = b"".join(m.get("body", b"") for m in messages)
    try:
        value = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        return None  # the route answers malformed JSON in its own words
    error = json_error(value, ["body"])
    return None if error is None else _invalid(scope.get("path", ""), "the JSON body is not valid", error)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


__all__ = ["GUARDED_BODY_BYTES", "MAX_JSON_DEPTH", "RequestGuard", "json_error"]
