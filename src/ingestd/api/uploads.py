"""Reading a submit request's body: JSON, or multipart with files streamed straight into the blob store.

A multipart body is parsed as it arrives (``python_multipart``'s push parser fed from ``request.stream()``):
each file part's bytes go to ``store.blobs.put`` chunk by chunk, so an upload is never whole in memory nor
spooled to a temporary file first. Plain fields are small and read whole (at most ``MAX_FIELD_BYTES``).

Per-file metadata (``captured_at``, ``sample_rate``...) is given either as a form field ``meta.<file>`` holding
a JSON object, or in the ``input`` JSON under ``"file_meta": {"<file>": {...}}`` (removed from the input before
the pipeline validates it). ``<file>`` is the part's file name, or its field name.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ingestd import errors
from ingestd.api import guards
from ingestd.models import JSON, StoredFile

if TYPE_CHECKING:
    from ingestd.store.protocol import BlobStore

MAX_FIELD_BYTES = 1024 * 1024
MAX_FILES = 100
_DRAIN_LIMIT = 1024 * 1024 * 1024  # after a 413, read (and drop) at most this much so the client sees the answer


@dataclass
class SubmitBody:
    """What a submit request carried: the (unvalidated) input, the stored files and a hash of both."""

    input: JSON
    files: list[StoredFile] = field(default_factory=list)
    file_hashes: list[str] = field(default_factory=list)

    def payload_hash(self, pipeline: str) -> str:
        """Equal for equal requests: the Idempotency-Key comparison."""
        files = sorted(zip((f.name for f in self.files), self.file_hashes, strict=True))
        doc = {"pipeline": pipeline, "input": self.input, "files": files}
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _parse_json(raw: bytes, what: str) -> Any:
    try:
        value = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidInput(f"{what} is not valid JSON: {exc}") from exc
    error = guards.json_error(value, ["body"])  # no NUL, no absurd nesting: the store could not take them
    if error is not None:
        raise errors.InvalidInput(f"{what} is not valid", errors=[error])
    return value


async def read_json(request: Request, limit: int) -> SubmitBody:
    """A JSON body is the pipeline input itself."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.InputTooLarge(f"the JSON body is over {limit} bytes")
        chunks.append(chunk)
    value = _parse_json(b"".join(chunks), "the body")
    if not isinstance(value, dict):
        raise errors.InvalidInput("the JSON body must be an object")
    return SubmitBody(input=value)


class _Events:
    """Parser callbacks collected as a queue of events, consumed by ``MultipartReader``."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, Any]] = deque()
        self._field = b""
        self._value = b""

    def callbacks(self) -> Any:
        return {
            "on_part_begin": lambda: self.queue.append(("begin", None)),
            "on_part_data": lambda d, s, e: self.queue.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.queue.append(("end", None)),
            "on_header_field": self._on_field,
            "on_header_value": self._on_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": lambda: self.queue.append(("headers", None)),
        }

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self.queue.append(("header", (self._field.decode("latin-1").lower(), self._value.decode("latin-1"))))
        self._field = self._value = b""


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str


class MultipartReader:
    """Pull-style access to a streaming multipart body: ``next_part()`` then ``chunks()`` for its bytes."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self._stream = request.stream()
        self._events = _Events()
        self._parser = MultipartParser(boundary, self._events.callbacks())
        self._done = False
        self._in_part = False

    async def _next(self) -> tuple[str, Any] | None:
        queue = self._events.queue
        while not queue:
            if self._done:
                return None
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                self._parser.finalize()
                continue
            except ClientDisconnect as exc:
                raise errors.InvalidInput("the client went away during the upload") from exc
            try:
                self._parser.write(chunk)
            except Exception as exc:  # python_multipart raises its own error types for malformed bodies
                raise errors.InvalidInput(f"malformed multipart body: {exc}") from exc
        return queue.popleft()

    async def next_part(self) -> Part | None:
        """The next part's headers (after skipping what is left of the current one), or None at the end."""
        while self._in_part:
            await self._skip_to_end()
        event = await self._next()
        if event is None:
            return None
        headers: dict[str, str] = {}
        while (event := await self._next()) is not None and event[0] == "header":
            headers[event[1][0]] = event[1][1]
        _, options = parse_options_header(headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        self._in_part = True
        return Part(name, filename, headers.get("content-type", "application/octet-stream"))

    async def _skip_to_end(self) -> None:
        async for _ in self.chunks():
            pass

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive."""
        while self._in_part:
            event = await self._next()
            if event is None or event[0] == "end":
                self._in_part = False
                return
            if event[0] == "data" and event[1]:
                yield event[1]

    async def read_field(self) -> bytes:
        """The current part whole (a small form field)."""
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > MAX_FIELD_BYTES:
                raise errors.InputTooLarge(f"a form field is over {MAX_FIELD_BYTES} bytes")
        return bytes(out)

    async def drain(self) -> None:
        """Read and drop the rest of the body, so a client still sending sees our early answer."""
        seen = 0
        try:
            async for chunk in self._stream:
                seen += len(chunk)
                if seen > _DRAIN_LIMIT:
                    return
        except (ClientDisconnect, RuntimeError):
            return


async def _hashing(chunks: AsyncIterator[bytes], digest: Any) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


@dataclass
class MultipartCollector:
    """Reads every part of a multipart submit, storing files as they come; cleans up stored blobs on failure."""

    blobs: BlobStore
    limit: int
    body: SubmitBody = field(default_factory=lambda: SubmitBody(input={}))
    meta: dict[str, JSON] = field(default_factory=dict)

    async def read(self, request: Request, boundary: bytes) -> SubmitBody:
        reader = MultipartReader(request, boundary)
        try:
            while (part := await reader.next_part()) is not None:
                await self._take(reader, part)
            self._apply_meta()
        except errors.InputTooLarge:
            await self.discard()
            await reader.drain()
            raise
        except BaseException:
            await self.discard()
            raise
        return self.body

    async def _take(self, reader: MultipartReader, part: Part) -> None:
        if part.filename is not None:
            await self._store_file(reader, part)
        elif part.name == "input":
            value = _parse_json(await reader.read_field(), "the `input` part")
            if not isinstance(value, dict):
                raise errors.InvalidInput("the `input` part must be a JSON object")
            self.body.input = value
        elif part.name.startswith("meta."):
            value = _parse_json(await reader.read_field(), f"the `{part.name}` part")
            if not isinstance(value, dict):
                raise errors.InvalidInput(f"`{part.name}` must be a JSON object")
            self.meta[part.name.removeprefix("meta.")] = value
        else:
            raise errors.InvalidInput(f"unexpected form field `{part.name}` (use `input`, `meta.<file>` or files)")

    async def _store_file(self, reader: MultipartReader, part: Part) -> None:
        if len(self.body.files) >= MAX_FILES:
            raise errors.InvalidInput(f"at most {MAX_FILES} files per job")
        digest = hashlib.sha256()
        ref, size = await self.blobs.put(_hashing(reader.chunks(), digest), max_size=self.limit)
        name = part.filename or part.name
        self.body.files.append(StoredFile(name=name, blob=ref, size=size, content_type=part.content_type))
        self.body.file_hashes.append(f"{part.name}:{digest.hexdigest()}")

    def _apply_meta(self) -> None:
        from_input = self.body.input.pop("file_meta", None) or {}
        if not isinstance(from_input, dict):
            raise errors.InvalidInput("`file_meta` must map file names to JSON objects")
        meta = {**from_input, **self.meta}
        files = []
        for f in self.body.files:
            extra = meta.get(f.name) or {}
            if not isinstance(extra, dict):
                raise errors.InvalidInput(f"metadata of `{f.name}` must be a JSON object")
            files.append(StoredFile(f.name, f.blob, f.size, f.content_type, {**f.meta, **extra}))
        self.body.files = files

    async def discard(self) -> None:
        """Delete the blobs stored so far (the job will not be created, or already exists)."""
        for f in self.body.files:
            try:
                await self.blobs.delete(f.blob)
            except Exception:  # best effort: a leftover blob costs disk, not correctness
                continue
        self.body.files = []
