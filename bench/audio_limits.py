"""What a "decompression bomb" of audio costs with and without the decoded-duration cap (issue 15, point 3).

Builds a FLAC of N hours of silence (8 kHz mono: a few MB), and a copy whose STREAMINFO says nothing about its
length (as a streaming encoder writes it), then decodes each with ``decode_file`` under a cap, printing the wall
and CPU seconds, the temporary PCM written and the outcome.

    .venv/bin/python bench/audio_limits.py --hours 6 --cap-hours 4 [--uncapped]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from ingestd import errors
from ingestd.pipelines.audio.decode import DurationLimit, SourceSpec, decode_file

RATE = 8000


def silent_flac(path: Path, hours: float) -> None:
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        minute = np.zeros((1, RATE * 60), dtype=np.int16)
        for m in range(round(hours * 60)):
            frame = av.AudioFrame.from_ndarray(minute, format="s16", layout="mono")
            frame.sample_rate, frame.pts = RATE, m * minute.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def without_length(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    data[21] &= 0xF0  # STREAMINFO's 36-bit total sample count: 0 means unknown
    data[22:26] = bytes(4)
    dst.write_bytes(bytes(data))


def run(src: Path, cap_hours: float | None) -> tuple[float, float, int, str]:
    limit = DurationLimit(cap_hours * 3600) if cap_hours else None
    with tempfile.TemporaryDirectory() as tmp:
        dst = os.path.join(tmp, "out.pcm")
        started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        try:
            decoded = decode_file(str(src), dst, SourceSpec(src.name, "audio/flac"), limit)
            outcome = f"decoded {decoded.duration / 3600:.2f} h"
        except errors.PermanentError as exc:
            outcome = exc.detail.split(": ", 1)[1][:70]
        written = os.path.getsize(dst) if os.path.exists(dst) else 0
        return time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu, written, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--cap-hours", type=float, default=4.0)
    parser.add_argument("--uncapped", action="store_true", help="also decode the whole file with no cap (slow)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flac, streamed = Path(tmp) / "silence.flac", Path(tmp) / "silence-streamed.flac"
        silent_flac(flac, args.hours)
        without_length(flac, streamed)
        print(f"{args.hours:g} h of silence: {flac.stat().st_size / 1e6:.1f} MB FLAC\n")
        print("| file | cap | wall s | CPU s | temp PCM MB | outcome |\n|---|---|---|---|---|---|")
        cases = [(flac, args.cap_hours), (streamed, args.cap_hours)] + ([(flac, None)] if args.uncapped else [])
        for path, cap in cases:
            wall, cpu, written, outcome = run(path, cap)
            label = f"{cap:g} h" if cap else "none"
            print(f"| {path.name} | {label} | {wall:.2f} | {cpu:.2f} | {written / 1e6:.0f} | {outcome} |")


if __name__ == "__main__":
    main()
