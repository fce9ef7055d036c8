"""A ``BlobStore`` on a local folder (the default next to the SQLite file: ``<db>.blobs/``).

A blob is written to a temporary file in the same folder, fsynced, then renamed into place (and the folder
fsynced), so a reference handed out always names a complete, durable file. File I/O runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

from ingestd import errors

_REF = re.compile(r"^[0-9a-f]{32}$")
_READ_SIZE = 256 * 1024
_WRITE_BATCH = 1024 * 1024


class FileBlobStore:
    """Blobs as files under ``root``: ``root/ab/abcdef...``."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(os.path.join(root, ".tmp"), exist_ok=True)

    def _path(self, ref: str) -> str:
        if not _REF.match(ref):
            raise errors.NotFound(f"no such blob: {ref!r}")
        return os.path.join(self.root, ref[:2], ref)

    async def put(self, chunks: AsyncIterator[bytes], *, max_size: int | None = None) -> tuple[str, int]:
        """Stream ``chunks`` into a new file; over ``max_size``: InputTooLarge and nothing left behind."""
        ref = uuid.uuid4().hex
        tmp = os.path.join(self.root, ".tmp", ref)
        try:
            handle = await asyncio.to_thread(open, tmp, "wb")
        except OSError as exc:
            raise _translate(exc) from exc
        try:
            size = await _write_all(handle, chunks, max_size)
            await asyncio.to_thread(_seal, handle, tmp, self._path(ref))
        except BaseException as exc:
            with contextlib.suppress(OSError):  # closing flushes: on a full disk that fails again
                handle.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise _translate(exc) from exc
            raise
        return ref, size

    async def open(self, ref: str) -> AsyncIterator[bytes]:
        """Stream the blob's bytes."""
        path = self._path(ref)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise errors.NotFound(f"no such blob: {ref}") from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, _READ_SIZE):
                yield chunk
        finally:
            handle.close()

    async def local_path(self, ref: str) -> str:
        """The blob's own file (nothing is copied)."""
        path = self._path(ref)
        if not await asyncio.to_thread(os.path.exists, path):
            raise errors.NotFound(f"no such blob: {ref}")
        return path

    async def delete(self, ref: str) -> None:
        with contextlib.suppress(FileNotFoundError, errors.NotFound):
            await asyncio.to_thread(os.unlink, self._path(ref))

    def delete_now(self, refs: list[str]) -> None:
        """Delete blobs synchronously (from the store's thread, after the transaction that dropped them)."""
        for ref in refs:
            with contextlib.suppress(FileNotFoundError, errors.NotFound):
                os.unlink(self._path(ref))


async def _write_all(handle: BinaryIO, chunks: AsyncIterator[bytes], max_size: int | None) -> int:
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise errors.InputTooLarge(f"the upload is larger than {max_size} bytes", max_size=max_size)
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= _WRITE_BATCH:  # batch small chunks: one thread hop per ~1 MB
            await asyncio.to_thread(handle.write, b"".join(pending))
            pending, pending_size = [], 0
    if pending:
        await asyncio.to_thread(handle.write, b"".join(pending))
    return size


def _translate(exc: OSError) -> errors.StoreError:
    """A full or failing disk is ``StoreUnavailable`` (503 with Retry-After: space may come back)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
        return errors.StoreUnavailable(f"blob store: {exc.strerror or exc}")
    return errors.StoreError(f"blob store: {exc}")


def _seal(handle: BinaryIO, tmp: str, final: str) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    folder = os.path.dirname(final)
    os.makedirs(folder, exist_ok=True)
    os.rename(tmp, final)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)
