"""Why the pipeline's transcript differs from the transcriber's: each real-speech clip transcribed alone (the
whole file) and as its own ``audio`` job (in-process worker, offline providers, ``diarize: false``), WER of both.

    .venv/bin/python bench/speech_pipeline.py [--prompts 100] [--dump] [--min-speech 0.25] [--model tiny.en]
    .venv/bin/python bench/speech_pipeline.py --long [--dump]

The clips and references are ``bench/speech_data.py``'s; scored with ``bench/speech_score.py`` (Whisper's English
normaliser and the references' spellings; the "Whisper's normaliser alone" column without the latter).
``--dump`` prints every clip whose two transcripts differ. ``--min-speech``: the VAD's shortest speech span
(seconds; ``silero.SpanRules.min_speech_seconds``, set for this process only). Slow on a busy machine (one job
per clip).

``--long``: long-form speech instead. Each category's clips are joined, in order, with pauses of 0.4-1.2 s
(seeded) into one recording (prompts: the first 60; the call and alsa together), which is transcribed whole
and run as one job with the offline defaults (diarization on); WER against the joined references. A recording
of minutes is what a user uploads; Whisper then decodes many 30 s windows of one clip.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import wave
from pathlib import Path

import numpy as np
import speech
import speech_data
import speech_score
from audio import FAST, run_job

from ingestd.providers import silero
from ingestd.providers.whisper import WhisperTranscriber
from ingestd.settings import Settings


def set_min_speech(seconds: float) -> None:
    """Make ``seconds`` the VAD's shortest speech span for this process (every SileroVAD builds its rules from
    ``SpanRules``' defaults)."""
    defaults = list(silero.SpanRules.__init__.__defaults__ or ())
    defaults[1] = seconds
    silero.SpanRules.__init__.__defaults__ = tuple(defaults)


def long_recordings(clips: list[speech_data.Clip], folder: Path) -> dict[str, tuple[Path, str]]:
    """Each category's clips joined with short pauses into one 16 kHz WAV, and the joined references."""
    groups = {
        "audiobook": [c for c in clips if c.category == "audiobook"],
        "prompts": [c for c in clips if c.category == "prompts"][:60],
        "call+alsa": [c for c in clips if c.category in ("call", "alsa")],
    }
    rng = np.random.default_rng(0)
    out = {}
    for name, group in groups.items():
        parts = []
        for clip in group:
            pause = np.zeros(int(16000 * rng.uniform(0.4, 1.2)), "<i2")
            parts += [np.frombuffer(speech.pcm16k(clip.path), "<i2"), pause]
        path = folder / f"long-{name.replace('+', '-')}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.concatenate(parts).tobytes())
        out[name] = (path, " ".join(c.text for c in group))
    return out


async def long_form(args: argparse.Namespace) -> None:
    stt = WhisperTranscriber(model=args.model)
    options = {"model": args.model} if args.model else {}
    print("| recording | seconds | words | WER %, whole file | WER %, through the pipeline (diarization on) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/jobs.db", **FAST)
        refs, alone, piped = [], [], []
        for name, (path, reference) in long_recordings(speech_data.real_speech(args.prompts), Path(tmp)).items():
            pcm = speech.pcm16k(path)
            alone.append(stt.transcribe_sync(pcm).text)
            job, _, _ = await run_job(path, settings, options)
            assert job.result is not None, job.error
            segments = sorted((s for c in job.result["conversations"] for s in c["transcript"]), key=_start)
            piped.append(" ".join(s["text"] for s in segments))
            refs.append(reference)
            whole, words = speech_score.wer(refs[-1:], alone[-1:])
            through, _ = speech_score.wer(refs[-1:], piped[-1:])
            row = f"| {name} | {len(pcm) / 32000:.0f} | {words} | {100 * whole:.1f} | {100 * through:.1f} |"
            print(row, flush=True)
            if args.dump:
                print(f"  whole {speech_score.normalise(alone[-1])!r}")
                print(f"  pipeline {speech_score.normalise(piped[-1])!r}")
        (whole, words), (through, _) = speech_score.wer(refs, alone), speech_score.wer(refs, piped)
        print(f"| ALL | | {words} | {100 * whole:.1f} | {100 * through:.1f} |")


def _start(segment: dict[str, float]) -> float:
    return segment["start"]


async def main(args: argparse.Namespace) -> None:
    if args.long:
        await long_form(args)
        return
    by_category: dict[str, list[speech_data.Clip]] = {}
    for clip in speech_data.real_speech(args.prompts):
        by_category.setdefault(clip.category, []).append(clip)
    if args.min_speech is not None:
        set_min_speech(args.min_speech)
    print(f"VAD rules {silero.SpanRules()}, model {args.model or 'default'}")
    stt = WhisperTranscriber(model=args.model)
    options = {"diarize": False, **({"model": args.model} if args.model else {})}
    print("| category | words | WER %, whole file | WER %, through the pipeline | same, Whisper's normaliser alone |")
    print("|---|---|---|---|---|")
    totals: list[list[tuple[float, int]]] = [[], [], []]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/jobs.db", **FAST)
        for category, clips in by_category.items():
            alone = [stt.transcribe_sync(speech.pcm16k(c.path)).text for c in clips]
            piped = []
            for clip in clips:
                job, _, _ = await run_job(clip.path, settings, options)
                assert job.result is not None, job.error
                segments = [s for c in job.result["conversations"] for s in c["transcript"]]
                piped.append(" ".join(s["text"] for s in sorted(segments, key=lambda s: s["start"])))
            refs = [c.text for c in clips]
            (whole, words), (through, _) = speech_score.wer(refs, alone), speech_score.wer(refs, piped)
            plain, plain_words = speech_score.wer(refs, piped, fair=False)
            for total, cell in zip(totals, [(whole, words), (through, words), (plain, plain_words)], strict=True):
                total.append(cell)
            row = f"| {category} | {words} | {100 * whole:.1f} | {100 * through:.1f} | {100 * plain:.1f} |"
            print(row, flush=True)
            for clip, a, p in zip(clips, alone, piped, strict=True):
                if args.dump and speech_score.normalise(a) != speech_score.normalise(p):
                    whole_text, piped_text = speech_score.normalise(a), speech_score.normalise(p)
                    print(f"  {clip.path.name}: whole {whole_text!r}\n    pipeline {piped_text!r}")
    cells = [100 * sum(e * w for e, w in t) / max(1, sum(w for _, w in t)) for t in totals]
    words = sum(w for _, w in totals[1])
    print(f"| ALL REAL SPEECH | {words} | {cells[0]:.1f} | {cells[1]:.1f} | {cells[2]:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--dump", action="store_true")
    parser.add_argument("--min-speech", type=float, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--long", action="store_true", help="long-form: each category's clips joined into one file")
    asyncio.run(main(parser.parse_args()))
