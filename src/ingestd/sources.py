"""Source URLs: a job's input files named by URL instead of sent in the request body, fetched by the worker.

A pipeline takes them by having a ``source_urls`` field in its input (the audio pipeline does). The worker fetches
them before the pipeline runs, in a checkpointed step ``fetch`` (a retried or resumed job does not fetch again):
each URL is streamed (httpx) into the job's blob storage, capped at ``Settings.source_max_bytes``, and appended to
the job's files as the pipeline sees them (``ctx.job.files``, named after the URL's last path segment, the URL in
``meta["source_url"]``).

The same server-side request forgery guard as webhooks (``ingestd.ssrf``): every URL, and every redirect
(followed by hand, at most ``MAX_REDIRECTS``), is resolved and refused when it reaches a loopback, private,
link-local or metadata address, unless allowed by ``Settings.source_allow_hosts``/``source_allow_networks``;
the connection goes to the address that was checked. A refused URL is a 422 at submit when the URL itself is
refused, and a failed ``fetch`` step (naming the URL and why) when a redirect or a DNS answer leads there later.
Connection errors, timeouts, 429 and 5xx answers are retried like any transient step failure. httpx is imported
by the first fetch: the API only checks URLs at submit.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from ingestd import errors, ssrf
from ingestd.models import JSON, StoredFile
from ingestd.settings import Settings

if TYPE_CHECKING:
    import httpx

    from ingestd.runner import JobRunner
    from ingestd.store.protocol import BlobStore

MAX_REDIRECTS = 5
STEP = "fetch"


def urls_of(inp: Any) -> list[str]:
    """The ``source_urls`` of a validated input (none when its pipeline takes none)."""
    return [str(u) for u in getattr(inp, "source_urls", None) or []]


async def check(url: str, settings: Settings) -> ssrf.Target:
    """Resolve and check one URL (``ssrf.Refused`` saying why)."""
    return await ssrf.check_url(
        url,
        allow_hosts=settings.source_allow_hosts,
        allow_networks=settings.source_allow_networks,
        what="source",
    )


async def check_at_submit(urls: Sequence[str], settings: Settings) -> None:
    """422 (``invalid-input``) for a URL refused already at submit: not http(s), no host, or an internal address."""
    for url in urls:
        try:
            await check(url, settings)
        except ssrf.Refused as exc:
            raise errors.InvalidInput(str(exc), source_url=url, **exc.fields) from exc


def _name(url: str) -> str:
    return posixpath.basename(unquote(urlsplit(url).path)) or "source"


class _Fetch:
    """One URL's download: hop by hop through redirects, each hop checked, the body streamed into a blob."""

    def __init__(self, client: httpx.AsyncClient, blobs: BlobStore, settings: Settings, url: str) -> None:
        self.client, self.blobs, self.settings, self.url = client, blobs, settings, url

    def _failed(self, why: str) -> errors.PermanentError:
        return errors.PermanentError(f"source {self.url!r}: {why}", source_url=self.url)

    async def _target(self, url: str) -> ssrf.Target:
        try:
            return await check(url, self.settings)
        except ssrf.Refused as exc:
            hop = "" if url == self.url else f" (redirected to {url!r})"
            raise self._failed(f"{exc}{hop}") from exc

    async def run(self) -> StoredFile:
        import httpx

        current = self.url
        for _ in range(MAX_REDIRECTS + 1):
            target = await self._target(current)
            try:
                async with self.client.stream(
                    "GET",
                    target.pinned_url(),
                    headers={"host": target.host_header()},
                    extensions={"sni_hostname": target.host},
                ) as response:
                    if not response.is_redirect:
                        return await self._store(response)
                    location = response.headers.get("location")
                    if not location:
                        raise self._failed(f"HTTP {response.status_code} without a Location")
                    current = urljoin(current, location)
            except httpx.HTTPError as exc:  # connect, read, timeout: worth another try
                raise errors.TransientError(f"source {self.url!r}: {type(exc).__name__}: {exc}") from exc
        raise self._failed(f"more than {MAX_REDIRECTS} redirects")

    async def _store(self, response: httpx.Response) -> StoredFile:
        status = response.status_code
        if status == 429 or status >= 500:
            raise errors.TransientError(f"source {self.url!r}: HTTP {status}")
        if status >= 400:
            raise self._failed(f"HTTP {status}")
        cap = self.settings.source_max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._failed(f"{int(declared):,} bytes, over the {cap:,}-byte cap (INGESTD_SOURCE_MAX_BYTES)")
        try:
            ref, size = await self.blobs.put(response.aiter_bytes(), max_size=cap)
        except errors.InputTooLarge as exc:
            raise self._failed(f"more than the {cap:,}-byte cap (INGESTD_SOURCE_MAX_BYTES)") from exc
        kind = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        return StoredFile(_name(self.url), ref, size, kind or "application/octet-stream", {"source_url": self.url})


async def fetch_all(urls: Sequence[str], blobs: BlobStore, settings: Settings) -> list[JSON]:
    """Download every URL into ``blobs``, in order; the stored files as JSON (the ``fetch`` step's output)."""
    import httpx

    timeout = httpx.Timeout(settings.source_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        return [asdict(await _Fetch(client, blobs, settings, url).run()) for url in urls]


async def fetch_into(runner: JobRunner, inp: Any, blobs: BlobStore, settings: Settings) -> None:
    """Before the pipeline runs: fetch the input's ``source_urls`` (a checkpointed step ``fetch``) and add them to
    the job's files as the pipeline sees them. Nothing to do for an input without any."""
    urls = urls_of(inp)
    if not urls:
        return
    fetched: list[JSON] = await runner.step(STEP, lambda: fetch_all(urls, blobs, settings))
    runner.add_files([StoredFile(**f) for f in fetched])


__all__ = ["MAX_REDIRECTS", "check", "check_at_submit", "fetch_all", "fetch_into", "urls_of"]
