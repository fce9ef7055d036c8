"""Speech quality and speed of the offline ``audio`` pipeline on real human speech, per Whisper model.

    .venv/bin/python bench/speech.py [--models tiny.en,base] [--prompts 100] [--skip-structure] [--skip-sim]

For each model, a fresh ``ingestd serve`` (API + worker, SQLite in a temporary folder) runs one ``audio`` job per
source category (the clips as the job's files, ``model`` set in the input), exactly as a user's upload runs:
decode, voice activity, transcription, speakers (when the pipeline labels them), structure. Printed per category
and overall:

* **WER**: word error rate against the packages' own transcripts, after Whisper's English normalisation and
  the references' own spellings (``bench/speech_score.py``: keypad symbols as spoken, split compounds);
  sources in ``bench/speech_data.py`` (fetched once into ``bench/cache/``);
* **RTF**: the job's wall time (``started_at`` → ``finished_at``) / the audio's duration;
* **peak RSS** of the server process (``VmHWM``) after the model's jobs;
* on two-speaker material (the real call, and the SYNTHETIC espeak-ng meetings of ``bench/speech_meetings.py``):
  the share of words carrying the right speaker after the best label mapping, and the diarization error rate;
* on the meetings: precision and recall of action items and events (and right owners), offline and with the
  LLM path pointed at the provider simulator (``ingestd sim``; its chat answers are schema-valid filler, so those
  numbers show the plumbing, not a model's quality).

Targets (issue 11): WER <= 5 % on real speech, RTF <= 0.05 on 2 cores. The machine is shared: RTF and RSS taken
while other work runs are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import speech_data
import speech_meetings
import speech_score
from common import free_port, simulator_process, stop_process

from ingestd.client import Client
from ingestd.sim.testing import provider_env

MEETINGS_DIR = speech_data.CACHE / "meetings"


@contextlib.contextmanager
def server(root: Path, env_extra: dict[str, str] | None = None) -> Iterator[tuple[Client, int]]:
    """``ingestd serve`` (API + worker in one process) on a free port with a fresh SQLite database."""
    port = free_port()
    env = {**os.environ, "INGESTD_MAX_QUEUED_PER_TENANT": "1000000", **(env_extra or {})}
    database = f"sqlite:///{root / f'speech-{port}.db'}"
    args = [sys.executable, "-m", "ingestd.cli", "serve", "--port", str(port), "--database", database]
    log = (root / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(Exception):
                if client.http.get("/healthz").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {(root / f'serve-{port}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield client, proc.pid
    finally:
        client.close()
        stop_process(proc)
        log.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def run_job(
    client: Client, files: list[Path], payload: dict[str, Any], meta: dict[str, Any] | None = None
) -> tuple[dict[str, Any], float]:
    """Submit, wait, and return (result, job seconds from started_at to finished_at)."""
    with contextlib.ExitStack() as stack:
        specs = [(f"{i:03d}-{p.name}", stack.enter_context(p.open("rb"))) for i, p in enumerate(files)]
        job = client.submit("audio", payload, files=specs, file_meta=meta)
    while job.status not in ("succeeded", "partial", "failed", "canceled"):
        job = client.get(job.id, wait=5)
    if job.status not in ("succeeded", "partial"):
        raise SystemExit(f"job {job.id} {job.status}: {job.data.get('error')}")
    data = job.data
    started = _parse(data["started_at"])
    finished = _parse(data["finished_at"])
    return client.result(job.id), finished - started


def _parse(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def segments_by_file(result: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for conv in result["conversations"]:
        for seg in conv["transcript"]:
            out.setdefault(int(seg["file"]), []).append(seg)
    for segs in out.values():
        segs.sort(key=lambda s: s["start"])
    return out


def speech_rows(client: Client, pid: int, model: str, clips: list[speech_data.Clip]) -> list[dict[str, Any]]:
    """One job per category: WER, RTF and (two-speaker material) speaker scores."""
    rows = []
    for category in dict.fromkeys(c.category for c in clips):
        own = [c for c in clips if c.category == category]
        result, seconds = run_job(client, [c.path for c in own], {"model": model})
        by_file = segments_by_file(result)
        hyps = [" ".join(s["text"] for s in by_file.get(i, [])) for i in range(len(own))]
        error, words = speech_score.wer([c.text for c in own], hyps)
        if os.environ.get("SPEECH_BENCH_DUMP"):  # each clip's reference and hypothesis, normalised, on stderr
            for clip, hyp in zip(own, hyps, strict=True):
                ref_n, hyp_n = speech_score.normalise(clip.text), speech_score.normalise(hyp)
                if ref_n != hyp_n:
                    print(f"{model} {clip.path.name}: {ref_n!r} -> {hyp_n!r}", file=sys.stderr)
        audio = sum(duration(c.path) for c in own)
        row: dict[str, Any] = {"model": model, "category": category, "clips": len(own), "words": words}
        row.update(wer=error, rtf=seconds / audio, audio=audio, rss=peak_rss_mb(pid))
        if own[0].turns:
            segs = by_file.get(0, [])
            row["speaker_acc"] = speech_score.speaker_word_accuracy(
                [(t[2], t[3]) for t in own[0].turns], [(s.get("speaker"), s["text"]) for s in segs]
            )
            ref = speech_data.rttm(own[0].path.with_suffix(".rttm"))
            row["der"] = speech_score.der(ref, [(s["start"], s["end"], s.get("speaker")) for s in segs])
        rows.append(row)
    return rows


def meeting_rows(client: Client, pid: int, model: str, label: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The SYNTHETIC meetings, one job each: WER, speakers, and structure precision/recall."""
    rows: list[dict[str, Any]] = []
    totals = {"actions": [0, 0, 0, 0], "owners": 0, "events": [0, 0, 0, 0]}
    for meeting in speech_meetings.MEETINGS:
        rendered = speech_meetings.render(meeting, MEETINGS_DIR)
        meta = {f"000-{rendered.path.name}": {"captured_at": meeting.captured_at}}
        result, seconds = run_job(client, [rendered.path], {"model": model}, meta)
        segs = segments_by_file(result).get(0, [])
        ref_turns = [(str(t[2]), t[3]) for t in rendered.turns]
        hyp = [(s.get("speaker"), s["text"]) for s in segs]
        error, words = speech_score.wer([" ".join(t[3] for t in rendered.turns)], [" ".join(h[1] for h in hyp)])
        rttm = [(t[0], t[1], str(t[2])) for t in rendered.turns]
        spans = [(s["start"], s["end"], s.get("speaker")) for s in segs]
        mapping = speech_score._best_mapping(_time_pairs(rendered.turns, segs))
        scores = speech_score.structure_scores(
            meeting, result["conversations"], {h: int(r) for h, r in mapping.items() if h}
        )
        for key in ("actions", "events"):
            totals[key] = [a + b for a, b in zip(totals[key], scores[key], strict=True)]
        totals["owners"] += scores["owners"]
        rows.append(
            {"model": model, "category": f"meeting {meeting.name} (synthetic{label})", "clips": 1, "words": words,
             "wer": error, "rtf": seconds / rendered.seconds, "audio": rendered.seconds, "rss": peak_rss_mb(pid),
             "speaker_acc": speech_score.speaker_word_accuracy(ref_turns, hyp), "der": speech_score.der(rttm, spans),
             "title": next((c.get("title") for c in result["conversations"] if c.get("title")), "")}
        )  # fmt: skip
    return rows, totals


def script_structure() -> dict[str, Any]:
    """The extractive rules on the scripts themselves (their text and voices): the ceiling without ASR or
    diarization errors."""
    from datetime import datetime

    from ingestd.pipelines.audio import extractive

    totals = {"actions": [0, 0, 0, 0], "owners": 0, "events": [0, 0, 0, 0]}
    for meeting in speech_meetings.MEETINGS:
        segments = [{"speaker": str(voice), "text": text} for voice, text in meeting.turns]
        text = " ".join(t for _, t in meeting.turns)
        out = extractive.structure(text, datetime.fromisoformat(meeting.captured_at), segments)
        scores = speech_score.structure_scores(meeting, [out], {"0": 0, "1": 1})
        for key in ("actions", "events"):
            totals[key] = [a + b for a, b in zip(totals[key], scores[key], strict=True)]
        totals["owners"] += scores["owners"]
    return totals


def _time_pairs(turns: list[tuple[float, float, int, str]], segs: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(script voice, result label) for each segment, by the turn its middle falls in."""
    pairs = []
    for seg in segs:
        middle = (seg["start"] + seg["end"]) / 2
        voice = min(turns, key=lambda t: 0 if t[0] <= middle <= t[1] else min(abs(t[0] - middle), abs(t[1] - middle)))
        pairs.append((str(voice[2]), seg.get("speaker")))
    return pairs


def pcm16k(path: Path) -> bytes:
    """A file decoded to 16 kHz mono s16le with PyAV (what the pipeline's decode step gives the transcriber)."""
    import av
    import numpy as np

    out = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype("<i2").tobytes()


def transcriber_only(model: str, prompts: int, batched: int, beam: int) -> None:
    """In this (fresh) process: the transcriber alone on every real clip; prints JSON rows (WER, RTF, RSS)."""
    from ingestd.providers.whisper import WhisperTranscriber

    stt = WhisperTranscriber(model=model, beam_size=beam)
    stt.model()
    if batched:
        from faster_whisper import BatchedInferencePipeline

        pipe = BatchedInferencePipeline(stt.model())
    rows = []
    for category, own in _by_category(speech_data.real_speech(prompts)).items():
        hyps, busy, cpu, audio = [], 0.0, 0.0, 0.0
        for clip in own:
            pcm = pcm16k(clip.path)
            audio += len(pcm) / 32_000
            began, began_cpu = time.perf_counter(), time.process_time()
            if batched:
                import numpy as np

                samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
                pieces, _ = pipe.transcribe(samples, language="en", beam_size=beam, batch_size=batched)
                hyps.append(" ".join(p.text.strip() for p in pieces))
            else:
                hyps.append(stt.transcribe_sync(pcm).text)
            busy += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
        error, words = speech_score.wer([c.text for c in own], hyps)
        label = model + (f" batched{batched}" if batched else "") + (f" beam{beam}" if beam > 1 else "")
        rows.append({"model": label, "category": category,
                     "clips": len(own), "words": words, "wer": error, "rtf": busy / audio, "audio": audio,
                     "cpu": cpu / audio, "rss": peak_rss_mb(os.getpid())})  # fmt: skip
    print(json.dumps(rows))


def _by_category(clips: list[speech_data.Clip]) -> dict[str, list[speech_data.Clip]]:
    out: dict[str, list[speech_data.Clip]] = {}
    for clip in clips:
        out.setdefault(clip.category, []).append(clip)
    return out


def compare_models(models: list[str], prompts: int, batched: int, beams: list[int]) -> list[dict[str, Any]]:
    """Each model's transcriber-only rows, each in its own process (so peak RSS is the model's own)."""
    rows: list[dict[str, Any]] = []
    for model in models:
        for batch, beam in [(0, b) for b in beams] + ([(batched, beams[0])] if batched else []):
            cmd = [sys.executable, __file__, "--transcriber-only", model, "--prompts", str(prompts)]
            cmd += ["--batched", str(batch), "--beams", str(beam)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            own = json.loads(out.strip().splitlines()[-1])
            rows += [*own, overall(own[0]["model"], own, max(r["rss"] for r in own))]
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"| {'model':8} | {'category':42} | clips | words | WER % | RTF | CPU s / audio s | peak RSS MB |"
        " spk-word acc | DER % |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        acc = f"{r['speaker_acc']:.2f}" if "speaker_acc" in r else "-"
        der = f"{100 * r['der']:.1f}" if "der" in r else "-"
        cpu = f"{r['cpu']:.3f}" if "cpu" in r else "-"
        print(
            f"| {r['model']:8} | {r['category']:42} | {r['clips']:5} | {r['words']:5} | {100 * r['wer']:5.1f} | "
            f"{r['rtf']:.3f} | {cpu:>15} | {r['rss']:11.0f} | {acc:>12} | {der:>5} |"
        )


def overall(model: str, rows: list[dict[str, Any]], rss: float) -> dict[str, Any]:
    words = sum(r["words"] for r in rows)
    audio = sum(r["audio"] for r in rows)
    cpu = {"cpu": sum(r["cpu"] * r["audio"] for r in rows) / max(audio, 1e-9)} if all("cpu" in r for r in rows) else {}
    return {
        "model": model, "category": "ALL REAL SPEECH", "clips": sum(r["clips"] for r in rows), "words": words,
        "wer": sum(r["wer"] * r["words"] for r in rows) / max(words, 1),
        "rtf": sum(r["rtf"] * r["audio"] for r in rows) / max(audio, 1e-9), "audio": audio, "rss": rss, **cpu,
    }  # fmt: skip


def print_structure(label: str, model: str, totals: dict[str, Any]) -> None:
    ap, an, ar, at = totals["actions"]
    ep, en, er, et = totals["events"]
    print(
        f"| {model:8} | {label:28} | {ap}/{an} = {ap / max(an, 1):.2f} | {ar}/{at} = {ar / max(at, 1):.2f} | "
        f"{totals['owners']}/{at} | {ep}/{en} = {ep / max(en, 1):.2f} | {er}/{et} = {er / max(et, 1):.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--prompts", type=int, default=100, help="how many asterisk prompts (every n-th)")
    parser.add_argument("--skip-structure", action="store_true")
    parser.add_argument("--skip-sim", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the transcriber-only model table")
    parser.add_argument("--skip-transcriber", action="store_true", help="only the whole-job tables")
    parser.add_argument("--batched", type=int, default=0, help="also faster-whisper's batched pipeline, this batch")
    parser.add_argument("--beams", default="1", help="beam sizes to compare in the transcriber-only table")
    parser.add_argument("--transcriber-only", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.transcriber_only:
        transcriber_only(args.transcriber_only, args.prompts, args.batched, int(args.beams))
        return
    if not args.skip_transcriber:
        print("## transcriber only (each model in its own process; RTF = transcription time / audio)\n")
        beams = [int(x) for x in args.beams.split(",")]
        print_table(compare_models(args.models.split(","), args.prompts, args.batched, beams))
        print(flush=True)
    if args.skip_pipeline:
        return
    clips = speech_data.real_speech(args.prompts)
    rows: list[dict[str, Any]] = []
    structure: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="speech-bench-") as tmp:
        root = Path(tmp)
        for model in args.models.split(","):
            with server(root) as (client, pid):
                real = speech_rows(client, pid, model, clips)
                rows += [*real, overall(model, real, peak_rss_mb(pid))]
                if not args.skip_structure:
                    meetings, totals = meeting_rows(client, pid, model, "")
                    rows += meetings
                    structure.append(("offline (extractive)", model, totals))
            print_table(rows[-len(real) - 1 - (0 if args.skip_structure else len(speech_meetings.MEETINGS)) :])
            print(flush=True)
        if not args.skip_structure:
            structure.append(("the scripts (no ASR, true voices)", "-", script_structure()))
        if not args.skip_structure and not args.skip_sim:
            model = args.models.split(",")[-1]
            config = {"time_scale": 0.01, "require_auth": False}
            with simulator_process(config, quiet=True) as sim:
                env = {k: v for k, v in provider_env(sim).items() if "LLM" in k or "OPENAI" in k}
                with server(root, env) as (client, pid):
                    _, totals = meeting_rows(client, pid, model, ", sim LLM")
                    structure.append(("simulator LLM (filler)", model, totals))
    print("## per model and category\n")
    print_table(rows)
    if structure:
        print("\n## structure on the synthetic meetings\n")
        print(
            "| model    | analysis                     | action precision | action recall | owner right |"
            " event precision | event recall |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, model, totals in structure:
            print_structure(label, model, totals)
        print("\ntitles:", json.dumps([r.get("title") for r in rows if "title" in r]))


if __name__ == "__main__":
    main()
