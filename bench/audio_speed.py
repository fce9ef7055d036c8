"""Whole-job speed of the offline ``audio`` pipeline with diarization on and off: wall time and CPU time per
audio second, per stage, and the machine's load while it ran.

    .venv/bin/python bench/audio_speed.py [--minutes 8] [--runs 1] [--model tiny.en]

The recording is bench/diarization.py's SYNTHETIC multi-voice meetings (espeak-ng) joined and repeated to about
``--minutes`` (two voices or more, alternating turns of 2-6 s: the speakers stage's worst case, as it then
embeds the short windows too). Each job runs on an in-process worker with the offline defaults (Silero VAD,
Whisper, the GE2E voice encoder), exactly as ``ingestd serve`` runs it; one warm-up job loads the models first.

Printed per run: the job's wall time (submit to finish) and the CPU seconds the process and the speakers stage's
child process spent meanwhile (every thread), both per audio second; each stage's span (first step started to
last finished; ``speakers`` runs beside ``transcribe``, so their sum exceeds the job's wall time); the load
average (1/5/15 min) before and after. The target
(issue 11) is a whole-job real-time factor of at most 0.05 on 2 cores with diarization on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import diarization
import numpy as np


def long_recording(cache: Path, minutes: float) -> diarization.Recording:
    """The multi-voice SYNTHETIC meetings of bench/diarization.py, repeated to about ``minutes``."""
    meetings = [r for r in diarization.recordings(cache) if "SYNTHETIC" in r.name and r.speakers > 1]
    reps = max(1, int(np.ceil(minutes * 60 / sum(r.seconds for r in meetings))))
    turns: list[diarization.Turn] = []
    return diarization.Recording("long", np.concatenate([r.samples for r in meetings] * reps), turns)


def load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


async def measure(rec: diarization.Recording, tmp: Path, options: dict[str, Any]) -> list[str]:
    before = load()
    _, wall, cpu = await diarization.one_job(rec, tmp, options)
    stages = dict(diarization.STAGES)
    seconds = rec.seconds
    row = [f"{wall:.1f}", f"{wall / seconds:.4f}", f"{cpu / seconds:.4f}"]
    row += [f"{stages.get(k, 0.0) / seconds:.4f}" for k in ("decode", "speech", "speakers", "transcribe")]
    return [*row, before, load()]


async def main(args: argparse.Namespace) -> None:
    args.cache.mkdir(parents=True, exist_ok=True)
    rec = long_recording(args.cache, args.minutes)
    options: dict[str, Any] = {"model": args.model} if args.model else {}
    print(f"{rec.seconds / 60:.1f} min of SYNTHETIC meetings in one job, {os.cpu_count()} cores, options {options}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        await diarization.one_job(rec, Path(tmp), options)  # models loaded once per process: not in any row
        for _ in range(args.runs):
            for diarize in (True, False):
                row = await measure(rec, Path(tmp), {**options, "diarize": diarize})
                rows.append(["on" if diarize else "off", *row])
    header = ["diarize", "wall s", "RTF", "CPU s / audio s", "decode", "speech", "speakers", "transcribe"]
    diarization.table([*header, "load before (1/5/15 min)", "load after"], rows)
    print("(stage columns: the stage's span per audio second; speakers runs beside transcribe)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / "cache" / "diarization")
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--model", default=None)
    asyncio.run(main(parser.parse_args()))
