"""Why the pipeline's transcript differs from the transcriber's: each real-speech clip transcribed alone (the
whole file) and as its own ``audio`` job (in-process worker, offline providers, ``diarize: false``), WER of both.

    .venv/bin/python bench/speech_pipeline.py [--prompts 100] [--dump] [--min-speech 0.25] [--model tiny.en]

The clips and references are ``bench/speech_data.py``'s; scored with ``bench/speech_score.py`` (Whisper's English
normaliser and the references' spellings; the "Whisper's normaliser alone" column without the latter).
``--dump`` prints every clip whose two transcripts differ. ``--min-speech``: the VAD's shortest speech span
(seconds; ``silero.SpanRules.min_speech_seconds``, set for this process only). Slow on a busy machine (one job
per clip).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

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


async def main(args: argparse.Namespace) -> None:
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
    asyncio.run(main(parser.parse_args()))
