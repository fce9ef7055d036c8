"""Errors raised by ingestd.

Every error has a stable ``code`` (used as the RFC 9457 ``type`` suffix) and an HTTP ``status``; exactly one
place (``ingestd.api.problems``) turns them into ``application/problem+json``.

The tree::

    IngestdError
    ├── StoreError                 the database failed (driver errors are wrapped into this at the boundary);
    │   │                          transient: a job retries it later, the API answers 503 with Retry-After
    │   ├── StoreUnavailable       cannot connect, or the disk is full
    │   └── StoreRejected          the database refused the data (retrying cannot help)
    ├── NotFound                   no such job / pipeline / entity (or another tenant's)
    ├── Conflict                   the request contradicts the stored state
    │   ├── IdempotencyConflict    same Idempotency-Key, different payload
    │   ├── JobNotFinished         delete/result of a job that has not finished
    │   └── ResultUnavailable      the result of a job that failed or was canceled
    ├── InvalidInput               the request or the job's input is malformed
    │   ├── InputTooLarge          an upload is over the size limit
    │   ├── UnsupportedMediaType   a request body in a content type the endpoint does not take
    │   ├── BadRequest             a malformed header or parameter (e.g. Idempotency-Key)
    │   └── WebhookTargetRefused   a webhook URL on a loopback/private/link-local/metadata address
    ├── TooManyRequests            a tenant's queue cap is reached
    ├── Unauthorized               missing, unknown, revoked or expired API key
    ├── Forbidden                  the API key lacks the scope the request needs
    └── StepError                  a pipeline step failed
        ├── TransientError         worth retrying (timeouts, connection errors, 429, 5xx)
        └── PermanentError         retrying cannot help (bad content, 4xx)

``JobCanceled`` derives from ``BaseException`` (not ``IngestdError``) so that user pipeline code that catches
``Exception`` cannot swallow a cancellation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

PROBLEM_BASE = "https://ingestd.dev/problems/"


def problem_body(code: str, title: str, status: int, detail: str, extra: Mapping[str, Any] = {}) -> dict[str, Any]:
    """An RFC 9457 problem object as ingestd writes every one: ``type`` (``PROBLEM_BASE`` + ``code``), ``title``,
    ``status``, ``detail``, ``code``, then the ``extra`` members (which win over those)."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body["code"] = code
    body.update(extra)
    return body


class IngestdError(Exception):
    """Base class of every ingestd error."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """The RFC 9457 members of this error (without ``instance``)."""
        return problem_body(self.code, self.title, self.status, self.detail, self.extra)


class StoreError(IngestdError):
    code = "store-error"
    status = 503
    title = "The job store failed"


class StoreUnavailable(StoreError):
    code = "store-unavailable"
    title = "The job store is unavailable"


class StoreRejected(StoreError):
    """The database refused a statement for its data (a bad value, a constraint): the same write fails again."""

    code = "store-rejected"
    status = 500
    title = "The job store refused the data"


class NotFound(IngestdError):
    code = "not-found"
    status = 404
    title = "Not found"


class Conflict(IngestdError):
    code = "conflict"
    status = 409
    title = "Conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency-key-reused"
    status = 422
    title = "Idempotency-Key reused with a different payload"


class JobNotFinished(Conflict):
    code = "job-not-finished"
    status = 409
    title = "The job has not finished"


class LeaseLost(Conflict):
    """``save_step`` by a worker that no longer holds the job's lease: it must stop working on the job."""

    code = "lease-lost"
    status = 409
    title = "The job's lease was lost"


class InvalidInput(IngestdError):
    code = "invalid-input"
    status = 422
    title = "Invalid input"


class InputTooLarge(InvalidInput):
    code = "input-too-large"
    status = 413
    title = "Input too large"


class UnsupportedMediaType(InvalidInput):
    code = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class BadRequest(InvalidInput):
    code = "bad-request"
    status = 400
    title = "Bad request"


class WebhookTargetRefused(InvalidInput):
    """A webhook URL resolves to an address ingestd will not call (SSRF protection) unless allow-listed."""

    code = "webhook-target-refused"
    status = 422
    title = "Webhook target refused"


class ResultUnavailable(Conflict):
    code = "result-unavailable"
    status = 409
    title = "The job has no result"


class TooManyRequests(IngestdError):
    code = "too-many-requests"
    status = 429
    title = "Too many queued jobs"


class Unauthorized(IngestdError):
    code = "unauthorized"
    status = 401
    title = "Missing or unknown API key"


class Forbidden(IngestdError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class StepError(IngestdError):
    code = "step-failed"
    status = 500
    title = "A pipeline step failed"


class TransientError(StepError):
    """A failure worth retrying. ``retry_after`` (seconds) is honoured when a provider gave one."""

    code = "transient"
    title = "Transient failure"

    def __init__(self, detail: str = "", retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class PermanentError(StepError):
    code = "permanent"
    title = "Permanent failure"


class JobCanceled(BaseException):  # a control-flow signal, like asyncio.CancelledError
    """Raised inside a running job when its cancellation was requested."""
