"""The audio pipeline's numbers: the incident replayed two ways, the offline providers' speed and accuracy.

    .venv/bin/python bench/audio.py [--time-scale 0.5] [--realistic] [--offline-minutes 10] [--skip-offline]
                                    [--skip-wer]

1. **Incident** (simulator latencies, time-scaled): one recording with ~487 s of speech in 8 spans, 10 s of
   silence between them, conversation gap 5 s (so 8 conversations, one clip each). Run two ways in one process,
   against the same simulator and the same provider clients:

   * *serial*: what the old endpoint did: decode, VAD, then per segment one transcription and the three LLM
     calls, one after another;
   * *ingestd*: the ``audio`` job on a worker (SQLite store in a temporary folder).

   Latencies are fixed (p95 = median) and contention is off, so the critical path is exact: decode (measured)
   + VAD + the longest transcription + one chat call (the three questions of a conversation run at once; 8 clips
   and 8 conversations fit the default concurrency of 8). Target: ingestd's makespan / critical path <= 1.10.
2. **Offline real-time factor**: the ``audio`` job on the offline providers (Silero VAD, Whisper tiny.en,
   extractive structuring) over ``--offline-minutes`` of the espeak-ng sample meeting repeated; per stage
   seconds and seconds per audio second.
3. **WER** of the offline speech to text on sentences synthesised with espeak-ng (needs ``espeak-ng``).

The machine is shared: numbers taken while other work runs are noisy (the lead re-runs ``bench/``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from common import simulator_process

from ingestd.models import Job, NewJob, StoredFile
from ingestd.pipelines import audio
from ingestd.pipelines.audio.analysis import ChatAnalyzer, ConversationText
from ingestd.pipelines.audio.decode import SourceSpec, decode_file
from ingestd.pipelines.audio.workspace import read_spans
from ingestd.settings import Settings
from ingestd.sim.testing import provider_settings
from ingestd.store import open_store
from ingestd.store.protocol import JobStore
from ingestd.worker import Worker

T = TypeVar("T")
RATE = 16_000
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPANS = [52.0, 71.0, 38.0, 64.0, 80.0, 45.0, 59.0, 78.0]  # 487 s of speech, like the incident's upload
SILENCE = 10.0
DEEPGRAM = {"median_seconds": 0.25, "per_audio_second": 0.1}
CHAT = {"median_seconds": 4.0}
VAD = {"median_seconds": 0.05, "per_audio_second": 0.002}
FAST = {"lease_seconds": 10.0, "heartbeat_seconds": 1.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
WER_SENTENCES = [
    "The quarterly report shows that sales grew in every region except the north.",
    "Please send the signed contract to the legal team before the end of the day.",
    "We moved the product review to next Wednesday because the designer is away.",
    "The train to the airport leaves from platform seven every half hour.",
    "My sister is visiting us next month and she wants to see the old castle.",
    "Remember to water the plants and feed the cat while we are on holiday.",
    "The new office has a small kitchen, two meeting rooms and a quiet library.",
    "Our customer asked for a discount if they order more than one thousand units.",
]


def _fixed(route: dict[str, float]) -> dict[str, Any]:
    return {**route, "p95_seconds": route["median_seconds"], "contention_k": 0.0}


def sim_config(scale: float, realistic: bool) -> dict[str, Any]:
    """Fixed latencies (an exact critical path), or the simulator's real-service shapes (lognormal tails)."""
    if realistic:
        routes = {name: {"contention_k": 0.0} for name in ("deepgram", "chat", "vad")}
    else:
        routes = {"deepgram": _fixed(DEEPGRAM), "chat": _fixed(CHAT), "vad": _fixed(VAD)}
    return {"time_scale": scale, "routes": routes}


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def incident_recording(path: Path) -> float:
    """8 bursts of noise-modulated tone (the simulator's VAD hears them as speech), 10 s of silence between."""
    rng = np.random.default_rng(7)
    parts = [np.zeros(int(2 * RATE))]
    for seconds in SPANS:
        t = np.arange(int(seconds * RATE)) / RATE
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2
        parts += [
            (np.sin(2 * np.pi * 180 * t) * envelope * 6000 + rng.normal(0, 300, len(t))),
            np.zeros(int(SILENCE * RATE)),
        ]
    samples = np.concatenate(parts)
    write_wav(path, samples)
    return len(samples) / RATE


# --- the old endpoint: everything in sequence ----------------------------------------------------------------
async def serial(path: Path, settings: Settings, calls: dict[str, list[float]]) -> dict[str, float]:
    """The old endpoint's way; ``calls`` gets each provider call's measured seconds (for the critical path)."""
    providers = audio.default_providers(settings)
    started = time.perf_counter()
    try:
        pcm = path.with_suffix(".pcm")
        decoded = await asyncio.to_thread(decode_file, str(path), str(pcm), SourceSpec(path.name, "audio/wav"))
        decode_done = time.perf_counter()
        spans = await _timed(calls["vad"], providers.vad.detect(str(pcm)))
        analyzer = providers.analyzer
        assert isinstance(analyzer, ChatAnalyzer)
        ctx = _BareContext(f"serial-{time.time_ns()}")
        for i, span in enumerate(spans):
            clip = read_spans(str(pcm), [[span.start, span.end]])
            key = f"{ctx.job.id}:transcribe[{i}]"
            transcript = await _timed(calls["stt"], providers.stt.transcribe(clip, request_key=key))
            conv = ConversationText(transcript.text)
            for question in ("structure", "folder", "discard"):
                await _timed(calls["chat"], getattr(analyzer, question)(ctx, conv, f"structure[{i}].{question}"))
    finally:
        await providers.aclose()
    return {"makespan": time.perf_counter() - started, "decode": decode_done - started, "audio": decoded.duration}


async def _timed(into: list[float], call: Awaitable[T]) -> T:
    started = time.perf_counter()
    answer = await call
    into.append(time.perf_counter() - started)
    return answer


class _BareContext:
    """Just enough of a Context for the analyzer's calls outside any job (the serial baseline)."""

    def __init__(self, job_id: str) -> None:
        self.job = type("J", (), {"id": job_id})()

    async def call(self, provider: str, fn: Any, **_: Any) -> Any:
        return await fn()


# --- ingestd --------------------------------------------------------------------------------------------------
async def _blob(store: JobStore, path: Path) -> StoredFile:
    async def chunks() -> AsyncIterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    ref, size = await store.blobs.put(chunks())
    return StoredFile(path.name, ref, size, "audio/wav")


async def run_job(path: Path, settings: Settings, options: dict[str, Any]) -> tuple[Job, list[Any], float]:
    """One ``audio`` job on an in-process worker; returns the finished job, its events and the makespan."""
    store = await open_store(settings.database_url)
    providers = audio.default_providers(settings)
    worker = Worker(store, {"audio": audio.build(settings, providers)}, settings)
    task = asyncio.create_task(worker.run())
    try:
        file = await _blob(store, path)
        started = time.perf_counter()
        job = (await store.submit(NewJob("audio", options, files=(file,)))).job
        while not (job := await store.get_job(job.id)).terminal:  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        makespan = time.perf_counter() - started
        events = await store.read_events(job.id)
    finally:
        await worker.stop(grace=0)
        await task
        await providers.aclose()
        await store.close()
    return job, events, makespan


def step_seconds(events: list[Any], stage: str) -> float:
    """Seconds spent in a stage's steps. For ``structure``, its questions' steps: a ``structure[i]`` step also
    holds the wait for its conversation's clips (it starts while they are being transcribed)."""
    keys = [(e.data["key"], e.data["seconds"]) for e in events if e.type == "step.finished"]
    if stage == "structure":
        return sum(s for k, s in keys if k.startswith("structure[") and "." in k)
    return sum(s for k, s in keys if k.split("[")[0] == stage)


def critical_path(scale: float, audio_seconds: float, clips: list[float], decode_seconds: float) -> float:
    vad = (VAD["median_seconds"] + VAD["per_audio_second"] * audio_seconds) * scale
    stt = max(DEEPGRAM["median_seconds"] + DEEPGRAM["per_audio_second"] * c for c in clips) * scale
    return decode_seconds + vad + stt + CHAT["median_seconds"] * scale


def chain(events: list[Any], result: dict[str, Any]) -> float:
    """The longest chain of steps in the run itself: decode + speech + for the slowest conversation, its slowest
    clip then its slowest question (they run at once). Step times include ingestd's own work on each step, so
    makespan / chain measures the scheduling: waiting at barriers, slots, wake-ups."""
    took = {e.data["key"]: e.data["seconds"] for e in events if e.type == "step.finished"}
    longest = 0.0
    for conv in result["conversations"]:
        clips = max((took.get(f"transcribe[{i}]", 0.0) for i in conv["clips"]), default=0.0)
        asks = [took.get(f"structure[{conv['index']}].{q}", 0.0) for q in ("structure", "folder", "discard")]
        longest = max(longest, clips + max(asks))
    return took["decode"] + took["speech"] + longest


async def incident(scale: float, tmp: Path, realistic: bool) -> None:
    path = tmp / "incident.wav"
    total = incident_recording(path)
    with simulator_process(sim_config(scale, realistic)) as sim:
        base = {**FAST, **provider_settings(sim, embedding="offline")}
        calls: dict[str, list[float]] = {"vad": [], "stt": [], "chat": []}
        old = await serial(path, Settings(database_url=f"sqlite:///{tmp}/serial.db", **base), calls)
        settings = Settings(database_url=f"sqlite:///{tmp}/ingestd.db", **base)
        job, events, makespan = await run_job(path, settings, {"conversation_gap_seconds": 5})
    assert job.result is not None, job.error
    clips = [c["usage"]["audio_seconds"] for c in job.result["conversations"]]
    decode = step_seconds(events, "decode")
    nominal = critical_path(scale, total, clips, decode)
    # The same calls, measured one at a time in the serial run: the simulator's latency plus its own work
    # (reading the upload, its energy VAD) and the transfer, which a real provider also takes.
    measured = decode + max(calls["vad"]) + max(calls["stt"]) + max(calls["chat"])
    own = chain(events, job.result)
    kind = "realistic (lognormal) latencies" if realistic else "fixed latencies"
    print(
        f"\nIncident replay: {sum(SPANS):.0f} s of speech in {len(SPANS)} spans, {total:.0f} s of audio,"
        f" {kind}, time scale {scale}"
    )
    print(f"  ingestd found {len(clips)} conversations, {sum(clips):.1f} s of speech sent to speech-to-text")
    rows = [
        ["serial per segment (old endpoint)", f"{old['makespan']:.2f}", f"{old['makespan'] / scale:.1f}"],
        ["ingestd audio job", f"{makespan:.2f}", f"{makespan / scale:.1f}"],
        ["critical path: the run's own longest chain of steps", f"{own:.2f}", ""],
    ]
    if not realistic:  # with fixed latencies the chain is also known in advance
        rows.append(["critical path: decode + VAD + longest STT + chat (serial's calls)", f"{measured:.2f}", ""])
        rows.append(["critical path: the same from the configured latencies", f"{nominal:.2f}", ""])
    _table(["run", "makespan s", "as real s (/scale)"], rows)
    ratios = f"{makespan / own:.3f} against its own chain"
    if not realistic:
        ratios += f", {makespan / measured:.3f} against the serial run's calls, {makespan / nominal:.3f} configured"
    print(f"  ingestd makespan / critical path = {ratios} (target <= 1.10)")
    print(f"  speed-up over serial {old['makespan'] / makespan:.1f}x; decode ({decode:.2f} s) is local CPU, not scaled")


# --- offline providers -----------------------------------------------------------------------------------------
def long_meeting(path: Path, minutes: float) -> float:
    """The sample meeting (espeak-ng speech) repeated to ``minutes``."""
    one = tmp_decode(EXAMPLES / "team-meeting.ogg")
    reps = int(np.ceil(minutes * 60 / (len(one) / RATE)))
    samples = np.tile(one, reps)[: int(minutes * 60 * RATE)]
    write_wav(path, samples)
    return len(samples) / RATE


def tmp_decode(src: Path) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "x.pcm")
        decode_file(str(src), out, SourceSpec(src.name))
        return np.fromfile(out, dtype="<i2")


async def offline(minutes: float, tmp: Path) -> None:
    path = tmp / "long.wav"
    seconds = long_meeting(path, minutes)
    settings = Settings(database_url=f"sqlite:///{tmp}/offline.db", **FAST)
    job, events, makespan = await run_job(path, settings, {"conversation_gap_seconds": 120})
    assert job.result is not None, job.error
    rows = []
    for stage in ("decode", "speech", "speakers", "transcribe", "structure"):
        s = step_seconds(events, stage)
        rows.append([stage, f"{s:.2f}", f"{s / seconds:.4f}"])
    rows.append(["whole job (makespan)", f"{makespan:.2f}", f"{makespan / seconds:.4f}"])
    print(
        f"\nOffline providers on {seconds / 60:.0f} min of audio ({job.result['speech_seconds']:.0f} s of speech, "
        f"{job.result['clips']} clips), {os.cpu_count()} cores"
    )
    _table(["stage", "seconds", "real-time factor"], rows)


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate: word-level Levenshtein distance / reference length."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1] / len(reference)


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _spoken(n: int) -> str:
    """A number as said ("7" -> "seven", "1,000" -> "one thousand"), up to 9999: Whisper writes digits."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _spoken(n % 100))
    return _spoken(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _spoken(n % 1000))


def _words(text: str) -> list[str]:
    """Lower case, punctuation and hyphens dropped, numbers spelled out (the usual WER normalisation)."""
    plain = "".join(c.lower() if c.isalnum() or c in " '" else " " for c in text.replace(",", ""))
    out: list[str] = []
    for word in plain.split():
        out += _spoken(int(word)).split() if word.isdigit() and int(word) < 10_000 else [word]
    return out


def word_error_rate(tmp: Path) -> None:
    from ingestd.providers.whisper import WhisperTranscriber

    if shutil.which("espeak-ng") is None:
        print("\nWER: espeak-ng is not installed (apt-get install espeak-ng); skipped")
        return
    stt = WhisperTranscriber()
    stt.model()  # load first: the RTF below is transcription only
    rows, refs, hyps, audio_s, busy = [], [], [], 0.0, 0.0
    for i, sentence in enumerate(WER_SENTENCES):
        voice = "en-us" if i % 2 == 0 else "en-us+f3"
        raw = tmp / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(raw), sentence], check=True)
        pcm = tmp_decode(raw).tobytes()
        started = time.perf_counter()
        text = stt.transcribe_sync(pcm).text
        busy += time.perf_counter() - started
        audio_s += len(pcm) / 2 / RATE
        refs += _words(sentence)
        hyps += _words(text)
        rows.append([f"{wer(_words(sentence), _words(text)):.3f}", text[:70]])
    print(f"\nOffline speech to text ({stt.name}) on {len(WER_SENTENCES)} espeak-ng sentences, {audio_s:.1f} s")
    _table(["WER", "transcript"], rows)
    print(f"  corpus WER {wer(refs, hyps):.3f} over {len(refs)} words (normalised: case, punctuation, numbers)")
    print(
        f"  RTF {busy / audio_s:.3f} on these short clips (Whisper pads each to a 30 s window: see the 10-minute RTF)"
    )


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  " + "  ".join("-" * w for w in widths)
    print(line)
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ingestd-bench-audio-") as d:
        tmp = Path(d)
        await incident(args.time_scale, tmp, realistic=False)
        if args.realistic:
            await incident(args.time_scale, tmp, realistic=True)
        if not args.skip_offline:
            await offline(args.offline_minutes, tmp)
        if not args.skip_wer:
            word_error_rate(tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=0.5, help="simulator latency multiplier")
    parser.add_argument("--offline-minutes", type=float, default=10.0)
    parser.add_argument("--realistic", action="store_true", help="also replay with lognormal latencies")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-wer", action="store_true")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
