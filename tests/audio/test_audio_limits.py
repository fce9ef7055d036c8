"""Caps on decoded audio, per file and per job (issue 15, point 3): a small file can hold hours of silence, so the
duration is checked against the header before decoding and against the samples while decoding, and the job fails
at ``decode`` naming the limit and the setting that raises it. Run with small limits on short example files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audio_support import api, example, fast_settings, submit, wait_job

from ingestd.store import open_store


def streamed_flac() -> bytes:
    """The example FLAC as a streaming encoder writes it: STREAMINFO's total-samples field 0 (unknown), so
    nothing before decoding says how long it is."""
    data = bytearray(example("voice-memo.flac"))
    assert data[:4] == b"fLaC"
    data[21] &= 0xF0  # the 36-bit total sample count: the low 4 bits of byte 21, then bytes 22-25
    data[22:26] = bytes(4)
    return bytes(data)


async def decode_error(tmp_path: Path, files: list[tuple[str, bytes]], **limits: Any) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        async with api(store, fast_settings(url, **limits)) as client:
            job = await wait_job(client, await submit(client, files))
    finally:
        await store.close()
    assert job["status"] == "failed", job
    error: dict[str, Any] = job["error"]
    assert error["stage"] == "decode", error
    return error


async def test_a_file_whose_header_declares_too_much_is_refused_before_decoding(tmp_path: Path) -> None:
    error = await decode_error(tmp_path, [("memo.flac", example("voice-memo.flac"))], audio_max_file_seconds=5)
    assert "memo.flac: its header declares 7.4" in error["reason"]
    assert "over the limit of 5 s (INGESTD_AUDIO_MAX_FILE_SECONDS)" in error["reason"]


async def test_a_file_without_a_declared_duration_stops_decoding_at_the_limit(tmp_path: Path) -> None:
    error = await decode_error(tmp_path, [("stream.flac", streamed_flac())], audio_max_file_seconds=3)
    assert "stream.flac: decodes to more than 3 s of audio (stopped there)" in error["reason"]
    assert "INGESTD_AUDIO_MAX_FILE_SECONDS" in error["reason"]


async def test_the_job_limit_counts_every_file(tmp_path: Path) -> None:
    files = [("a.flac", example("voice-memo.flac")), ("b.flac", example("voice-memo.flac"))]  # 7.4 s each
    error = await decode_error(tmp_path, files, audio_max_job_seconds=10)
    assert error["reason"].startswith("PermanentError: b.flac: its header declares 7.4")
    limit = "over the limit of 2.6 s (INGESTD_AUDIO_MAX_JOB_SECONDS=10, the job's earlier files took 7.4 s)"
    assert limit in error["reason"]
