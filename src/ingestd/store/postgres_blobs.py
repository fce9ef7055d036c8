"""A ``BlobStore`` inside PostgreSQL (table ``blobs``, ~1 MB chunks), so workers on other machines read inputs.

``put`` writes every chunk in one transaction: an upload over the limit (or any failure) rolls back and leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from ingestd import errors
from ingestd.store.postgres_base import RETRY_SECONDS, retryable

CHUNK_SIZE = 1024 * 1024
Acquire = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


class PostgresBlobStore:
    """Blobs as rows (ref, chunk_no, data). ``acquire`` lends a pooled connection (errors translated)."""

    def __init__(self, acquire: Acquire) -> None:
        self._acquire = acquire

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> tuple[str, int]:
        """Stream ``chunks`` into the database; over ``max_size``: InputTooLarge and nothing stored."""
        ref = uuid.uuid4().hex
        async with self._acquire() as conn, conn.transaction():
            size, chunk_no, pending = 0, 0, bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise errors.InputTooLarge(f"the upload is larger than {max_size} bytes", max_size=max_size)
                pending += chunk
                while len(pending) >= CHUNK_SIZE:
                    await _insert(conn, ref, chunk_no, bytes(pending[:CHUNK_SIZE]))
                    del pending[:CHUNK_SIZE]
                    chunk_no += 1
            if pending or chunk_no == 0:
                await _insert(conn, ref, chunk_no, bytes(pending))
        return ref, size

    async def open(self, ref: str) -> AsyncIterator[bytes]:
        """Stream the blob chunk by chunk (one query per chunk: memory stays at one chunk)."""
        chunk_no = 0
        while True:
            data = await self._chunk(ref, chunk_no)
            if data is None:
                if chunk_no == 0:
                    raise errors.NotFound(f"no such blob: {ref}")
                return
            if data:
                yield bytes(data)
            chunk_no += 1

    async def _chunk(self, ref: str, chunk_no: int) -> bytes | None:
        """One chunk, read again through a lost connection or a server restart (a read is safe to repeat)."""
        delay, deadline = 0.05, time.monotonic() + RETRY_SECONDS
        while True:
            try:
                async with self._acquire() as conn:
                    data: bytes | None = await conn.fetchval(
                        "SELECT data FROM blobs WHERE ref = $1 AND chunk_no = $2", ref, chunk_no
                    )
                    return data
            except errors.StoreUnavailable as exc:
                if not retryable(exc.__cause__, idempotent=True) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def local_path(self, ref: str) -> str:
        """A temporary file holding a copy of the blob; the caller deletes it when done."""
        fd, path = tempfile.mkstemp(prefix="ingestd-blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self.open(ref):
                    await asyncio.to_thread(out.write, chunk)
        except BaseException:
            os.unlink(path)
            raise
        return path

    async def delete(self, ref: str) -> None:
        async with self._acquire() as conn:
            await conn.execute("DELETE FROM blobs WHERE ref = $1", ref)


async def _insert(conn: asyncpg.Connection, ref: str, chunk_no: int, data: bytes) -> None:
    await conn.execute("INSERT INTO blobs (ref, chunk_no, data) VALUES ($1, $2, $3)", ref, chunk_no, data)


async def delete_refs(conn: asyncpg.Connection, refs: list[str]) -> None:
    """Delete blobs inside the caller's transaction (a job's deletion takes its files with it)."""
    if refs:
        await conn.execute("DELETE FROM blobs WHERE ref = ANY($1::text[])", refs)


_: Callable[..., Awaitable[Any]] = _insert
