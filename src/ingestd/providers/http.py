"""What every hosted provider client shares: one httpx call with failures translated where they enter.

- timeouts, connection errors, 408/425/429 and 5xx → ``errors.TransientError`` (``retry_after`` from the
  ``Retry-After`` header: seconds, possibly fractional, or an HTTP date; or ``retry-after-ms``);
- other 4xx → ``errors.PermanentError`` carrying the provider's own message;
- a 2xx whose body is not the expected JSON → ``errors.PermanentError`` (``ProviderHTTP.json``).

Every message names the provider, so a failed step says which service failed and why.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ingestd import errors
from ingestd.models import JSON

_TRANSIENT_STATUSES = frozenset({408, 425, 429})


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait according to ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _provider_message(response: httpx.Response) -> str:
    """The provider's own error text (OpenAI ``error.message``, Deepgram ``err_msg``), else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        for key in ("err_msg", "message", "detail", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)[:300]


class ProviderHTTP:
    """An HTTP session with one provider: base URL, auth, timeout, and error translation.

    Args:
        provider: the name used in error messages and results (``deepgram``, ``openai``...).
        base_url: the service's base URL; paths given to ``post`` are appended to it.
        api_key: sent as ``Authorization: <auth_scheme> <api_key>``; no header when None (Ollama, vLLM).
        timeout: seconds for the whole call (connect, write, read).
        client: an ``httpx.AsyncClient`` shared between providers; one is created (and closed by ``aclose``)
            when not given.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        auth_scheme: str = "Bearer",
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(limits=httpx.Limits(max_connections=None))
        self.headers = {"Authorization": f"{auth_scheme} {api_key}"} if api_key else {}

    async def post(self, path: str, *, request_key: str | None = None, **kwargs: Any) -> httpx.Response:
        """POST ``base_url + path``; a 2xx response, or a translated ``StepError``."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if request_key is not None:
            headers["X-Request-Key"] = request_key
        try:
            response = await self.client.post(self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.TransientError(
                f"{self.provider}: no answer within {self.timeout:g} s ({type(exc).__name__})", provider=self.provider
            ) from exc
        except httpx.TransportError as exc:
            raise errors.TransientError(
                f"{self.provider}: connection failed ({type(exc).__name__}: {exc})", provider=self.provider
            ) from exc
        self.raise_for_status(response)
        return response

    def raise_for_status(self, response: httpx.Response) -> None:
        """Translate a non-2xx answer into ``TransientError`` or ``PermanentError``."""
        status = response.status_code
        if status < 300:
            return
        detail = f"{self.provider}: HTTP {status}: {_provider_message(response)}"
        if status in _TRANSIENT_STATUSES or status >= 500:
            raise errors.TransientError(
                detail, retry_after=parse_retry_after(response.headers), provider=self.provider, status_code=status
            )
        raise errors.PermanentError(detail, provider=self.provider, status_code=status)

    def json(self, response: httpx.Response) -> JSON:
        """The answer's JSON object, or ``PermanentError`` when it is not one."""
        try:
            body = response.json()
        except ValueError as exc:
            raise errors.PermanentError(
                f"{self.provider}: the answer is not JSON: {response.text[:200]!r}", provider=self.provider
            ) from exc
        if not isinstance(body, dict):
            raise errors.PermanentError(f"{self.provider}: expected a JSON object, got {type(body).__name__}")
        return body

    def malformed(self, what: str) -> errors.PermanentError:
        """The error for an answer that lacks what we need."""
        return errors.PermanentError(f"{self.provider}: malformed answer: {what}", provider=self.provider)

    async def aclose(self) -> None:
        """Close the HTTP client if this session created it."""
        if self._owns_client:
            await self.client.aclose()


def usage(*, calls: int = 1, tokens_in: int = 0, tokens_out: int = 0, audio_seconds: float = 0.0) -> JSON:
    """The usage record every provider answer carries."""
    return {"calls": calls, "tokens_in": tokens_in, "tokens_out": tokens_out, "audio_seconds": audio_seconds}
