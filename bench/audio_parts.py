"""Where a whole offline ``audio`` job's CPU goes: each part run on its own, one after the other, on the same
recording as bench/audio_speed.py, in CPU-seconds of this process per audio second, with the load.

    .venv/bin/python bench/audio_parts.py [--minutes 8] [--fine-hops 0.2,0.4]

Parts: decode (PyAV to 16 kHz s16le), VAD (Silero), Whisper (the pipeline's clips through ``transcribe_sync``,
split into CTranslate2's ``encode`` / ``generate`` / ``align`` calls and the rest), the speakers' long windows
(1.6 s every 0.5 s) and short windows (0.8 s every ``--fine-hops`` s, each), and the clustering with re-placed
changes of speaker. CPU time is the steadier figure on a shared machine; it still grows with the load (the
same Whisper work took 0.065 CPU-s per audio s at load 2 and 0.134 at load 9-12: the cores are shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import audio_speed
import diarization

from ingestd.pipelines.audio import diarize, speaker_turns
from ingestd.pipelines.audio.decode import SourceSpec, decode_file
from ingestd.pipelines.audio.plan import plan_work
from ingestd.pipelines.audio.workspace import read_spans
from ingestd.providers.silero import SileroVAD
from ingestd.providers.speakers import VoiceEncoder
from ingestd.providers.whisper import WhisperTranscriber


class Timed:
    """Wraps CTranslate2's Whisper model: the CPU seconds (process) of its encode, generate and align calls."""

    def __init__(self, inner: Any, spent: dict[str, float]) -> None:
        self.inner, self.spent = inner, spent

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in ("encode", "generate", "align"):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + time.process_time() - started

        return timed


def main(args: argparse.Namespace) -> None:
    rec = audio_speed.long_recording(args.cache, args.minutes)
    seconds = rec.seconds
    tmp = Path(tempfile.mkdtemp())
    wav, pcm = tmp / "job.wav", str(tmp / "job.pcm")
    diarization.write_wav(wav, rec.samples)
    parts: dict[str, float] = {}
    started = time.process_time()
    decode_file(str(wav), pcm, SourceSpec("job.wav", "audio/wav"))
    parts["decode"] = time.process_time() - started
    vad = SileroVAD()
    vad.detect_sync(pcm)  # the model loaded outside the measurement
    started = time.process_time()
    speech = [[s.start, s.end] for s in vad.detect_sync(pcm)]
    parts["VAD"] = time.process_time() - started
    plan = plan_work([[(s, e) for s, e in speech]], [None], gap_seconds=120, max_clip_seconds=300)
    stt = WhisperTranscriber()
    model = stt.model()
    stt.transcribe_sync(read_spans(pcm, plan["clips"][0]["spans"][:3]))  # warm
    spent: dict[str, float] = {}
    model.model = Timed(model.model, spent)
    started = time.process_time()
    for clip in plan["clips"]:
        stt.transcribe_sync(read_spans(pcm, clip["spans"]))
    whisper = time.process_time() - started
    model.model = model.model.inner
    parts.update({f"Whisper {k}": v for k, v in spent.items()})
    parts["Whisper, the rest"] = whisper - sum(spent.values())
    encoder = VoiceEncoder()
    tracks = [{"file": 0, "channel": None}]
    speaker_turns.job_speakers(encoder, tracks, [speech[:5]], {0: pcm}, diarize.SpeakerCount())  # warm
    started = time.process_time()
    long = speaker_turns.embed_track(encoder, pcm, speech)
    parts["speakers: long windows"] = time.process_time() - started
    for hop in (float(h) for h in args.fine_hops.split(",")):
        started = time.process_time()
        fine = speaker_turns.embed_track(VoiceEncoder(0.8, hop, 0.3), pcm, speech)
        parts[f"speakers: short windows every {hop} s"] = time.process_time() - started
    started = time.process_time()
    found = speaker_turns.job_turns(tracks, [speech], {0: long}, diarize.SpeakerCount(), lambda _: fine)
    parts["speakers: clustering, turns"] = time.process_time() - started
    clips = ", ".join(f"{sum(e - s for s, e in c['spans']):.0f} s" for c in plan["clips"])
    print(f"{seconds / 60:.1f} min, clips {clips}, {len(found['speakers'])} speaker(s) found, {os.cpu_count()} cores")
    rows = [[k, f"{v:.1f}", f"{v / seconds:.4f}"] for k, v in parts.items()]
    diarization.table(["part", "CPU s", "CPU s per audio s"], rows)
    print("load after (1/5/15 min):", audio_speed.load())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / "cache" / "diarization")
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--fine-hops", default="0.2,0.4")
    main(parser.parse_args())
