"""Where one job execution keeps its decoded audio: a private temporary folder, one PCM file per input file.

Checkpoints hold only what decoding found out (durations, formats), never the PCM itself (minutes of audio are
tens of megabytes). A job resumed by another worker, or on another machine, finds no PCM file and decodes the
input again (a few hundred milliseconds per minute of audio), then reads its clips from it. The folder is
per execution (``mkdtemp``), so two executions of one job never share files, and is removed when the
execution ends, however it ends (the folder of a killed worker is removed by the job's next execution on the
same machine). The input files themselves are never touched: the store deletes them with the
job, only once the job is terminal.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import tempfile
from collections.abc import Sequence

from ingestd import errors
from ingestd.pipeline import Context
from ingestd.pipelines.audio import channels
from ingestd.pipelines.audio.decode import DecodedAudio, DurationLimit, decode_file
from ingestd.pipelines.audio.inputs import file_spec
from ingestd.pipelines.audio.plan import sample_range
from ingestd.providers.base import SAMPLE_RATE

# PostgreSQL's blob store hands out a temporary copy named like this; the caller deletes it after use.
_TEMP_BLOB_PREFIX = "ingestd-blob-"


class Workspace:
    """The decoded PCM of each input file of one job execution."""

    def __init__(self, ctx: Context, max_file_seconds: float = 0.0, max_job_seconds: float = 0.0) -> None:
        self.ctx = ctx
        self.max_file_seconds, self.max_job_seconds = max_file_seconds, max_job_seconds  # 0: no limit
        prefix = f"ingestd-audio-{ctx.job.id}-"
        # A worker killed on this machine left its folder behind; this job runs here now, so the folder is stale.
        for stale in glob.glob(os.path.join(tempfile.gettempdir(), glob.escape(prefix) + "*")):
            shutil.rmtree(stale, ignore_errors=True)
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self._locks: dict[int, asyncio.Lock] = {}

    def close(self) -> None:
        """Remove the folder and everything decoded into it."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def pcm_path(self, index: int) -> str:
        return os.path.join(self.dir, f"{index}.pcm")

    async def decode(self, index: int, limit: DurationLimit | None = None) -> DecodedAudio:
        """Decode input file ``index`` into this workspace (off the event loop), within ``limit`` (default: the
        per-file limit)."""
        file = self.ctx.job.files[index]
        spec = file_spec(file)
        try:
            src = await self.ctx.file_path(file)
        except errors.NotFound as exc:
            raise errors.PermanentError(
                f"{file.name}: the uploaded file is gone ({exc.detail})", file=file.name
            ) from exc
        try:
            limit = limit or self._limit_after(())
            return await self.ctx.run_cpu(decode_file, src, self.pcm_path(index), spec, limit)
        finally:
            if os.path.basename(src).startswith(_TEMP_BLOB_PREFIX):
                await asyncio.to_thread(_unlink, src)

    async def decode_all(self) -> list[DecodedAudio]:
        """Decode every input file, one after another (decoding already uses a whole core)."""
        if not self.ctx.job.files:
            raise errors.PermanentError("the job has no recordings: attach one or more audio files")
        decoded: list[DecodedAudio] = []
        for i in range(len(self.ctx.job.files)):
            decoded.append(await self.decode(i, self._limit_after(decoded)))
        return decoded

    def _limit_after(self, decoded: Sequence[DecodedAudio]) -> DurationLimit | None:
        """The per-file limit, or what the files before this one left of the per-job limit if that is less."""
        per_file = DurationLimit(self.max_file_seconds) if self.max_file_seconds > 0 else None
        if self.max_job_seconds <= 0:
            return per_file
        left = max(0.0, self.max_job_seconds - sum(d.duration for d in decoded))
        if per_file is not None and per_file.seconds <= left:
            return per_file
        used = f", the job's earlier files took {round(self.max_job_seconds - left, 1):g} s" if decoded else ""
        return DurationLimit(left, f"INGESTD_AUDIO_MAX_JOB_SECONDS={self.max_job_seconds:g}{used}")

    async def ensure(self, index: int) -> str:
        """The PCM file of input ``index``, decoding it again when this execution has not (a resumed job)."""
        lock = self._locks.setdefault(index, asyncio.Lock())
        async with lock:  # concurrent clips of one file decode it once
            path = self.pcm_path(index)
            if not os.path.exists(path):
                await self.decode(index)
            return path

    async def clip(self, index: int, spans: Sequence[Sequence[float]], channel: int | None = None) -> bytes:
        """The speech ``spans`` of input ``index`` (of one of its channels), joined end to end (16 kHz mono
        s16le)."""
        path = await self.ensure(index) if channel is None else await self.ensure_channel(index, channel)
        return await asyncio.to_thread(read_spans, path, spans)

    async def ensure_channel(self, index: int, channel: int) -> str:
        """The PCM file of one channel of input ``index`` (every channel is split out on first use)."""
        lock = self._locks.setdefault(index, asyncio.Lock())
        path = os.path.join(self.dir, f"{index}.ch{channel}.pcm")
        async with lock:
            if not os.path.exists(path):
                await self._split(index)
        return path

    async def _split(self, index: int) -> None:
        file = self.ctx.job.files[index]
        spec = file_spec(file)
        src = await self.ctx.file_path(file)
        count = await self.ctx.run_cpu(channels.channel_count, src, spec)
        paths = [os.path.join(self.dir, f"{index}.ch{c}.pcm") for c in range(count)]
        try:
            await self.ctx.run_cpu(channels.split_channels, src, paths, spec)
        finally:
            if os.path.basename(src).startswith(_TEMP_BLOB_PREFIX):
                await asyncio.to_thread(_unlink, src)


def read_spans(path: str, spans: Sequence[Sequence[float]]) -> bytes:
    """The bytes of ``spans`` (seconds) of a 16 kHz mono s16le file, joined."""
    parts: list[bytes] = []
    with open(path, "rb") as f:
        for start, end in spans:
            lo, hi = sample_range(float(start), float(end), SAMPLE_RATE)
            f.seek(lo)
            parts.append(f.read(max(0, hi - lo)))
    return b"".join(parts)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["Workspace", "read_spans"]
