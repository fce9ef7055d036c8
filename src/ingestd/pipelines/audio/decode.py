"""The ``decode`` stage: any supported recording → 16 kHz mono s16le PCM on disk, with PyAV, streaming.

Packets are demuxed, decoded and resampled one at a time and appended to the output file, so an hour of audio
never sits in memory. What cannot be trusted fails here, naming the file and the reason (``PermanentError``,
so the job fails at ``decode`` at once instead of retrying): an empty file, bytes that are not a recording, a
recording whose content is not what its name or content type says, and data lost to corruption or truncation
(fewer samples than the header declares, or many packets that do not decode), and audio longer than the
operator's limit (``DurationLimit``: refused from the header before decoding, or stopped while decoding).
"""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass
from typing import Any

import av

from ingestd import errors
from ingestd.models import JSON
from ingestd.providers.base import SAMPLE_RATE

# Container families, by what PyAV's probe calls them and by what a name or content type says.
_PROBED = {
    "wav": "wav",
    "ogg": "ogg",
    "mp3": "mp3",
    "flac": "flac",
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "aac": "mp4",  # ADTS: what an .aac file holds
    "matroska,webm": "webm",
}
_EXTENSIONS = {
    "wav": "wav", "wave": "wav",
    "ogg": "ogg", "oga": "ogg", "opus": "ogg",
    "mp3": "mp3",
    "flac": "flac",
    "m4a": "mp4", "mp4": "mp4", "aac": "mp4",
    "webm": "webm", "mka": "webm", "mkv": "webm",
    "pcm": "raw", "raw": "raw", "s16le": "raw", "l16": "raw",
}  # fmt: skip
_MEDIA_TYPES = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/ogg": "ogg", "audio/opus": "ogg", "application/ogg": "ogg",
    "audio/mpeg": "mp3", "audio/mp3": "mp3",
    "audio/flac": "flac", "audio/x-flac": "flac",
    "audio/mp4": "mp4", "audio/m4a": "mp4", "audio/x-m4a": "mp4", "audio/aac": "mp4", "video/mp4": "mp4",
    "audio/webm": "webm", "video/webm": "webm", "audio/x-matroska": "webm",
    "audio/l16": "raw", "audio/pcm": "raw", "audio/x-raw": "raw",
}  # fmt: skip
_MAGIC = {b"RIFF": "wav", b"OggS": "ogg", b"fLaC": "flac", b"ID3": "mp3", b"\x1a\x45\xdf\xa3": "webm"}
MAX_BAD_PACKET_SHARE = 0.02  # a dropped Bluetooth frame is tolerated; a damaged file is not
MIN_DECODED_SHARE = 0.95  # of the duration the header declares
_OGG_TAIL = 70_000  # an Ogg page is at most 65,307 bytes: the last one lies within this many


@dataclass(frozen=True)
class SourceSpec:
    """What is known about one input file before decoding it."""

    name: str
    content_type: str = "application/octet-stream"
    sample_rate: int | None = None  # given for raw PCM16
    channels: int = 1

    def declared_family(self) -> str | None:
        """The container family its content type (or else its name) claims, or None when neither says."""
        media = self.content_type.split(";")[0].strip().lower()
        if media in _MEDIA_TYPES:
            return _MEDIA_TYPES[media]
        ext = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
        return "raw" if self.sample_rate else None


@dataclass(frozen=True)
class DecodedAudio:
    """The outcome of decoding one file; ``as_json`` is what the ``decode`` checkpoint stores."""

    name: str
    samples: int  # at 16 kHz mono
    format: str  # e.g. "ogg/opus", "raw/s16le"
    source_sample_rate: int
    source_channels: int

    @property
    def duration(self) -> float:
        return self.samples / SAMPLE_RATE

    def as_json(self) -> JSON:
        return {**asdict(self), "duration": round(self.duration, 3)}


@dataclass(frozen=True)
class DurationLimit:
    """The most audio one file may decode to, and the setting that allows more (named in the refusal).

    A small file can hold hours (silence compresses to nothing): the limit is checked against the duration the
    header declares before decoding, and against the samples written while decoding, which stops at the limit.
    """

    seconds: float
    setting: str = "INGESTD_AUDIO_MAX_FILE_SECONDS"

    def refuse(self, spec: SourceSpec, what: str) -> errors.PermanentError:
        return _fail(spec, f"{what}, over the limit of {_hours(self.seconds)} ({self.setting})")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{round(seconds, 1):g} s"


def _fail(spec: SourceSpec, reason: str) -> errors.PermanentError:
    return errors.PermanentError(f"{spec.name}: {reason}", file=spec.name)


def decode_file(src: str, dst: str, spec: SourceSpec, limit: DurationLimit | None = None) -> DecodedAudio:
    """Decode ``src`` into ``dst`` (16 kHz mono s16le); raises ``PermanentError`` for unusable input, or for
    audio longer than ``limit``."""
    size = os.path.getsize(src)
    if size == 0:
        raise _fail(spec, "the file is empty")
    declared = spec.declared_family()
    actual = _sniff(src)
    if declared == "raw":
        if actual is not None:
            raise _fail(spec, f"labelled as raw PCM but its content is {actual}")
        if limit is not None and spec.sample_rate and size / (2 * spec.channels * spec.sample_rate) > limit.seconds:
            raise limit.refuse(spec, f"holds {_hours(size / (2 * spec.channels * spec.sample_rate))} of PCM")
        return _decode_raw(src, dst, spec, size, limit)
    try:
        container = av.open(src, metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise _fail(spec, f"not a readable audio file ({_reason(exc)})") from exc
    with container:
        family = _PROBED.get(container.format.name)
        if not container.streams.audio:
            raise _fail(spec, f"contains no audio stream (detected {container.format.long_name or 'unknown'})")
        if declared is not None and family is not None and family != declared:
            raise _fail(spec, f"labelled as {declared} ({spec.content_type}) but its content is {family}")
        if family is None and declared is not None:
            raise _fail(spec, f"labelled as {declared} but its content is {container.format.long_name}")
        try:
            return _decode_container(container, dst, spec, family or container.format.name, limit)
        except av.FFmpegError as exc:
            raise _fail(spec, f"corrupt: decoding stopped ({_reason(exc)})") from exc


def _sniff(src: str) -> str | None:
    """The container family its first bytes prove, when they prove one."""
    with open(src, "rb") as f:
        head = f.read(12)
    for magic, family in _MAGIC.items():
        if head.startswith(magic):
            return family
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def _reason(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _decode_container(
    container: Any, dst: str, spec: SourceSpec, family: str, limit: DurationLimit | None = None
) -> DecodedAudio:
    stream = container.streams.audio[0]
    codec = stream.codec_context.name
    declared = _declared_seconds(container, stream)
    if limit is not None and declared is not None and declared > limit.seconds:
        raise limit.refuse(spec, f"its header declares {_hours(declared)} of audio")  # refused before decoding
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    written = packets = bad = 0
    with open(dst, "wb") as out:
        for packet in container.demux(stream):
            _check_limit(limit, spec, written, "decodes to more than {limit} of audio (stopped there)")
            packets += 1
            try:
                frames = packet.decode()
                resampled = [r for frame in frames for r in resampler.resample(frame)]
            except (av.FFmpegError, ValueError):
                # Decoders conceal a damaged packet; too many of them is a damaged file. Garbage that parses as
                # a frame of another rate or layout makes the resampler raise ValueError: damage too.
                bad += 1
                continue
            written += _write(out, resampled)
        written += _write(out, resampler.resample(None))
    if written == 0:
        raise _fail(spec, f"contains no audio samples ({family}/{codec})")
    if packets and bad > max(2, MAX_BAD_PACKET_SHARE * packets):
        raise _fail(spec, f"corrupt: {bad} of {packets} {codec} packets could not be decoded")
    _check_limit(limit, spec, written, "decodes to more than {limit} of audio")
    _check_complete(spec, written / SAMPLE_RATE, declared)
    if family == "wav":
        _check_wav_header(container.name, spec)
    elif family == "ogg":
        _check_ogg_end(container.name, spec)
    return DecodedAudio(spec.name, written, f"{family}/{codec}", stream.sample_rate, stream.codec_context.channels)


def _check_limit(limit: DurationLimit | None, spec: SourceSpec, written: int, what: str) -> None:
    if limit is not None and written > limit.seconds * SAMPLE_RATE:
        raise limit.refuse(spec, what.format(limit=_hours(limit.seconds)))


def _write(out: Any, frames: list[Any]) -> int:
    samples = 0
    for frame in frames:
        # planes[0] can be padded past the samples: write only the real ones
        out.write(bytes(frame.planes[0])[: frame.samples * 2])
        samples += frame.samples
    return samples


def _declared_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _check_complete(spec: SourceSpec, decoded: float, declared: float | None) -> None:
    if declared and decoded < declared * MIN_DECODED_SHARE and declared - decoded > 0.25:
        raise _fail(spec, f"corrupt or truncated: decoded {decoded:.1f} s of the {declared:.1f} s its header declares")


def _check_wav_header(path: str, spec: SourceSpec) -> None:
    """FFmpeg trusts the file size over a WAV's data chunk size, so a cut WAV decodes silently: compare them."""
    with open(path, "rb") as f:
        head = f.read(4096)
    at = head.find(b"data", 12)
    if at < 0 or at + 8 > len(head):
        return
    (claimed,) = struct.unpack("<I", head[at + 4 : at + 8])
    present = os.path.getsize(path) - (at + 8)
    if 0 < claimed < 0xFFFFFFFF and present < claimed:  # 0 / 0xFFFFFFFF: written by a streaming recorder
        raise _fail(spec, f"truncated: {present} of the {claimed} data bytes its WAV header declares")


def _check_ogg_end(path: str, spec: SourceSpec) -> None:
    """An Ogg file declares no duration, so a cut one decodes silently: its last page must be whole and end the
    stream (the end-of-stream flag, 0x04)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - _OGG_TAIL))
        tail = f.read()
    at = tail.rfind(b"OggS")
    if at < 0 or at + 27 > len(tail):
        raise _fail(spec, "truncated: the Ogg stream's last page is cut off")
    segments = tail[at + 26]
    table = tail[at + 27 : at + 27 + segments]
    if len(table) < segments or at + 27 + segments + sum(table) > len(tail):
        raise _fail(spec, "truncated: the Ogg stream's last page is cut off")
    if not tail[at + 5] & 0x04:
        raise _fail(spec, "truncated: the Ogg stream ends without its end-of-stream page")


def _decode_raw(src: str, dst: str, spec: SourceSpec, size: int, limit: DurationLimit | None) -> DecodedAudio:
    """Raw PCM16 little-endian at the given sample rate: nothing to probe, so the rate must be given."""
    if not spec.sample_rate:
        raise _fail(spec, "raw PCM needs its sample_rate")
    if size % (2 * spec.channels):
        raise _fail(spec, f"truncated: {size} bytes is not a whole number of {spec.channels}-channel 16-bit samples")
    options = {"sample_rate": str(spec.sample_rate), "ch_layout": "mono" if spec.channels == 1 else "stereo"}
    if spec.channels not in (1, 2):
        options["ch_layout"] = f"{spec.channels}c"
    try:
        container = av.open(src, format="s16le", options=options)
    except av.FFmpegError as exc:
        raise _fail(spec, f"not readable as raw PCM16 ({_reason(exc)})") from exc
    with container:
        try:
            decoded = _decode_container(container, dst, spec, "raw", limit)
        except av.FFmpegError as exc:
            raise _fail(spec, f"corrupt: decoding stopped ({_reason(exc)})") from exc
    return DecodedAudio(spec.name, decoded.samples, "raw/s16le", spec.sample_rate, spec.channels)


__all__ = ["DecodedAudio", "DurationLimit", "SourceSpec", "decode_file"]
