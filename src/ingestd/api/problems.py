"""The one place where errors become HTTP answers: RFC 9457 ``application/problem+json``.

Every error the API can give goes through here: ``ingestd.errors`` raised by handlers or the store, Starlette's
own HTTP errors (404 for an unknown route, 405 with ``Allow``), request validation errors (422), and anything
unexpected (500, logged with its traceback, never shown to the client).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingestd import errors

log = logging.getLogger("ingestd.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = errors.PROBLEM_BASE
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
UNAVAILABLE_RETRY_AFTER = 5  # seconds, on a 503 that carries no better estimate (a store outage, a full disk)

# Starlette raises bare HTTP errors for routing; give each a stable code like our own errors have.
_HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "input-too-large",
    415: "unsupported-media-type",
    431: "headers-too-large",
    422: "invalid-input",
    429: "too-many-requests",
}


class ProblemResponse(Response):
    """A problem document, serialised with orjson."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(
    status: int, detail: str, *, code: str | None = None, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build problem members for a status without an ``ingestd.errors`` class behind it."""
    code = code or _HTTP_CODES.get(status, "internal" if status >= 500 else "error")
    body = errors.problem_body(code, HTTPStatus(status).phrase, status, detail)
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def error_response(exc: errors.IngestdError, instance: str | None = None) -> ProblemResponse:
    """The answer for one of our errors, with ``Retry-After`` when the error carries one."""
    body = exc.to_problem()
    if isinstance(exc, errors.StoreRejected):  # a driver's message about our own statement: logged, not shown
        body = {**errors.StoreRejected().to_problem(), "detail": "the job store refused this request's data"}
    headers: dict[str, str] = {}
    retry_after = body.pop("retry_after", None) or getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(float(retry_after))))
        body["retry_after"] = int(headers["Retry-After"])
    if retry_after is None and exc.status == 503:  # the store is down or full: tell clients when to come back
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        body["retry_after"] = UNAVAILABLE_RETRY_AFTER
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ingestd"'
    if instance:
        body.setdefault("instance", instance)
    return ProblemResponse(body, status_code=exc.status, headers=headers)


async def _on_ingestd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.IngestdError)
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(exc, request.url.path)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    body = problem(exc.status_code, detail, instance=request.url.path)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette lists the first matching route's methods only
        headers["Allow"] = ", ".join(allowed_methods(request))
    return ProblemResponse(body, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this request's path (each probed: included routers hide theirs)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    body = problem(422, "The request is not valid", instance=request.url.path, errors=errs)
    return ProblemResponse(body, status_code=422)


class UnhandledErrorMiddleware:
    """Turn an unexpected exception into a 500 problem (Starlette's default is a text/plain page).

    It sits innermost-but-one so the exception handlers above have had their chance; when the response has
    already started (a stream broke half-way) there is nothing left to answer, and the error is only logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            body = problem(500, "An unexpected error occurred", instance=scope.get("path"))
            await ProblemResponse(body, status_code=500)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register every handler on ``app``."""
    app.add_exception_handler(errors.IngestdError, _on_ingestd_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_middleware(UnhandledErrorMiddleware)
