"""``channels: "separate"``: each channel of a multichannel recording as a track of its own.

A call recorder often puts one party on each channel; mixed down, their overlapping words garble each other.
With ``separate``, every channel is decoded (PyAV, streaming, after ``decode`` has checked the file) into a
16 kHz mono PCM file of its own, gets its own voice activity and clips, and its words carry the speaker
``channel_<n>`` (0 = the first channel, the left one of a stereo file). A file with one channel is one track
either way. The default (``mix``) is one track per file: the mix-down ``decode`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import av
import numpy as np

from ingestd import errors
from ingestd.models import JSON
from ingestd.pipelines.audio.decode import SourceSpec
from ingestd.providers.base import SAMPLE_RATE

MIX = "mix"
SEPARATE = "separate"


def tracks(decoded: Sequence[JSON], mode: str) -> list[JSON]:
    """The job's tracks: ``{"file": i, "channel": None}`` per file, or one per channel of a multichannel file."""
    out: list[JSON] = []
    for index, file in enumerate(decoded):
        count = int(file["source_channels"]) if mode == SEPARATE else 1
        out += [{"file": index, "channel": c if count > 1 else None} for c in range(count)]
    return out


def channel_speaker(channel: int) -> str:
    return f"channel_{channel}"


def channel_count(src: str, spec: SourceSpec) -> int:
    """How many channels the first audio stream of ``src`` has."""
    with av.open(src, metadata_errors="ignore", **_raw_options(spec)) as container:
        return int(container.streams.audio[0].codec_context.channels)


def split_channels(src: str, dsts: Sequence[str], spec: SourceSpec) -> int:
    """Decode each channel of ``src`` into ``dsts[c]`` (16 kHz mono s16le); returns the samples per channel."""
    try:
        container = av.open(src, metadata_errors="ignore", **_raw_options(spec))
    except av.FFmpegError as exc:
        raise errors.PermanentError(f"{spec.name}: not readable ({exc})", file=spec.name) from exc
    outs = [open(d, "wb") for d in dsts]
    written = 0
    try:
        with container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16p", layout=stream.layout, rate=SAMPLE_RATE)
            for packet in container.demux(stream):
                for frame in _decoded(packet):
                    written += _write_planes(resampler.resample(frame), outs)
            written += _write_planes(resampler.resample(None), outs)
    finally:
        for out in outs:
            out.close()
    return written


def _raw_options(spec: SourceSpec) -> dict[str, Any]:
    if spec.declared_family() != "raw":
        return {}
    layout = {1: "mono", 2: "stereo"}.get(spec.channels, f"{spec.channels}c")
    return {"format": "s16le", "options": {"sample_rate": str(spec.sample_rate), "ch_layout": layout}}


def _decoded(packet: Any) -> list[Any]:
    try:
        return list(packet.decode())
    except (av.FFmpegError, ValueError):  # ``decode`` already judged how much damage is tolerable
        return []


def _write_planes(frames: list[Any], outs: Sequence[Any]) -> int:
    samples = 0
    for frame in frames:
        planes = np.asarray(frame.to_ndarray()).reshape(len(frame.layout.channels), -1)
        for channel, out in enumerate(outs):
            out.write(planes[min(channel, len(planes) - 1), : frame.samples].astype("<i2").tobytes())
        samples += frame.samples
    return samples


__all__ = ["MIX", "SEPARATE", "channel_count", "channel_speaker", "split_channels", "tracks"]
