"""Who spoke when, offline: the speaker model and clustering behind the ``audio`` pipeline's ``speakers`` stage.

    .venv/bin/python bench/diarization.py [--skip-alternatives] [--skip-windowings] [--skip-jobs] [--long-minutes 5]
        [--min-speech 0.25] [--many-voices]

Recordings (``--cache`` folder, default ``bench/cache/diarization``; nothing is committed):

* **call**: the real 30 s two-speaker phone call in the ``pyannote-audio`` 4.0.7 wheel (``pip download --no-deps``),
  with its RTTM (who spoke when);
* **SYNTHETIC meetings** spoken with espeak-ng (needs ``espeak-ng``): three two-voice meetings, one three-voice
  meeting (two of its voices are variants of one espeak-ng male voice: hard), a four-voice meeting with other
  voices and pitches, and a single-voice monologue. The reference turns are where each line was placed;
* **real mixes** (held out: not looked at while the clustering was chosen): real human clips of three packages
  taking turns (Debian's asterisk prompts, pocketsphinx's LibriVox reader, alsa-utils' channel names; fetched by
  ``bench/speech_data.py``), and a monologue of the asterisk voice alone.

1. **Alternatives** on each recording, over the same Silero speech spans and the same windows (1.6 s every
   0.5 s): the GE2E voice encoder of ``resemblyzer`` 0.1.4 run in numpy (what the pipeline uses) against a
   model-free baseline (mean and standard deviation of 20 MFCCs per window, librosa: the dev extra); clustered by
   NME-SC (what the pipeline uses), with and without the short windows (0.8 s every 0.2 s) that re-place
   changes of speaker, and by the agglomerative clustering it replaced; each with the automatic speaker count
   and with the true count. Printed: speakers found, DER, and seconds of embedding per audio second. Other
   packaged models were looked for and none ships its weights (docs/providers.md). **1b** (``--skip-windowings``
   skips): other window lengths and hops.
2. **Whole jobs** (``--skip-jobs`` skips): each recording as an ``audio`` job on an in-process worker (offline
   providers, the server's default Whisper), with ``diarize`` on and off: the share of recognised words that carry
   the right speaker (after the best one-to-one label mapping; a word's reference speaker is the turn covering its
   midpoint, or the nearest) and the real-time factor; then ``--long-minutes`` of the meetings end to end.

3. **Many voices** (``--many-voices``, alone): the two-voice meetings and the four-voice one joined end to end
   (4, 6, 8 and 10 voices, 2.6-6.7 min), clustered as the pipeline does (GE2E, NME-SC, short windows) with the
   neighbour search's floor capped at ``diarize.PRUNE_FLOOR`` windows and without the cap (a share of the
   windows only, as before): speakers found and DER, automatic and with the true count.

DER here is ``(missed + false alarm + confusion) / reference speech`` on 10 ms frames after the best one-to-one
label mapping (scipy's Hungarian solver), with the usual 0.25 s collar around reference boundaries unscored, and
without a collar (``DER0``); overlapping reference speech counts each speaker (a frame where two talk and one is
found is half right). This is the NIST definition, written out here because ``pyannote.metrics`` pulls pandas,
sympy and pyannote.database into the environment.

The machine is shared: speeds taken while other work runs are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import speech_pipeline  # --min-speech
from audio import FAST, run_job  # the audio bench's in-process job runner
from scipy.optimize import linear_sum_assignment

from ingestd.pipelines.audio import diarize, speaker_process, speaker_turns
from ingestd.providers.silero import SileroVAD
from ingestd.providers.speakers import SpeakerWindows, VoiceEncoder
from ingestd.settings import Settings

RATE = 16_000
STAGES: dict[str, float] = {}  # seconds per stage of the last job of ``one_job``
Turn = tuple[float, float, str]
TWO_VOICES = [("en-gb-scotland", "en-us+f4"), ("en-us+m2", "en-gb+f3"), ("en-029", "en-us+f5")]
THREE_VOICES = ("en-us", "en-gb+f2", "en-us+m6")
FOUR_VOICES = ("en-gb-x-gbcwmd+Andy@40", "en-us-nyc+Annie@70", "en-gb-x-gbclan+Michael@30", "en-us+Linda@60")
LINES = [
    "Thanks for joining, the school trip is the only thing on today's list.",
    "I spoke to the bus company and they can take forty children on the fourth.",
    "That works, but we still need two more parents to come along as helpers.",
    "I can ask in the class newsletter, it goes out on Friday morning.",
    "Good. What about lunch, are the children bringing their own food?",
    "Yes, and the museum has a room where they can eat if it rains.",
    "Then the last thing is the permission slips, most of them are back already.",
    "I will chase the missing ones on Monday and send you the final list.",
    "Perfect, let's meet again next week to check everything is ready.",
    "Sounds good, have a nice weekend everyone.",
]


@dataclass(frozen=True)
class Recording:
    name: str
    samples: np.ndarray  # 16 kHz mono int16
    turns: list[Turn]  # the reference: who spoke when

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE

    @property
    def speakers(self) -> int:
        return len({t[2] for t in self.turns})


# --- data --------------------------------------------------------------------------------------------------------
def decode16k(data: bytes | str) -> np.ndarray:
    out: list[np.ndarray] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(data if isinstance(data, str) else io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16)


def call(cache: Path) -> Recording:
    wheel = next(cache.glob("pyannote_audio-4.0.7-*.whl"), None)
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "pyannote-audio==4.0.7", "-d", str(cache)],
            check=True,
        )
        wheel = next(cache.glob("pyannote_audio-4.0.7-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        audio = z.read("pyannote/audio/sample/sample.wav")
        rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
    turns = [(float(f[3]), float(f[3]) + float(f[4]), f[7]) for f in (line.split() for line in rttm.splitlines())]
    return Recording("call (real, pyannote sample)", decode16k(audio), turns)


def say(voice: str, text: str, rate: int) -> np.ndarray:
    """``voice`` is an espeak-ng voice, optionally ``@pitch`` (0-99) after it."""
    name, _, pitch = voice.partition("@")
    command = ["espeak-ng", "-v", name, "-s", str(rate), *(["-p", pitch] if pitch else []), "--stdout", text]
    wav = subprocess.run(command, capture_output=True, check=True)
    samples = decode16k(wav.stdout)
    loud = np.flatnonzero(np.abs(samples) > 200)
    return samples[loud[0] : loud[-1] + 1]


def meeting(name: str, voices: Sequence[str], seed: int, lines: Sequence[str] = LINES) -> Recording:
    """``lines`` spoken in turn by ``voices`` with pauses of 0.2-0.9 s and a little noise."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    turns: list[Turn] = []
    at = 0.5
    parts.append(np.zeros(int(at * RATE)))
    for i, line in enumerate(lines):
        voice = voices[i % len(voices)]
        speech = say(voice, line, int(rng.choice([150, 165, 175]))) * rng.uniform(0.5, 1.0)
        pause = np.zeros(int(RATE * rng.uniform(0.2, 0.9)))
        turns.append((round(at, 3), round(at + len(speech) / RATE, 3), voice))
        parts += [speech, pause]
        at += (len(speech) + len(pause)) / RATE
    mixed = np.concatenate(parts) + rng.normal(0, 30, sum(len(p) for p in parts))
    return Recording(name, np.clip(mixed, -32768, 32767).astype(np.int16), turns)


def recordings(cache: Path) -> list[Recording]:
    out = [call(cache)]
    for i, pair in enumerate(TWO_VOICES):
        out.append(meeting(f"meeting {i + 1}, 2 voices (SYNTHETIC)", pair, seed=100 + i))
    out.append(meeting("meeting 4, 3 voices (SYNTHETIC)", THREE_VOICES, seed=200))
    out.append(meeting("monologue, 1 voice (SYNTHETIC)", ("en-gb-x-rp",), seed=300))
    out.append(meeting("meeting 5, 4 voices (SYNTHETIC)", FOUR_VOICES, seed=400, lines=LINES + LINES[:6]))
    out.append(real_mix())
    out.append(real_mix(("asterisk",), turns=8, seed=600))
    return out


def real_mix(names: Sequence[str] = ("asterisk", "librivox", "alsa"), turns: int = 15, seed: int = 500) -> Recording:
    """Real human voices from three packages taking turns (bench/speech_data.py fetches them): Debian's
    asterisk prompts (one voice, 8 kHz), the LibriVox reader of pocketsphinx's test data, and the voice of
    alsa-utils' channel names (two names per turn), with pauses of 0.3-0.8 s and a little noise. Held out: none
    of it was looked at while the clustering was chosen. One name: a monologue of that voice's clips."""
    import speech_data

    rng = np.random.default_rng(seed)
    prompts = [decode16k(str(c.path)) for c in speech_data.prompts(80) if 2.0 <= _seconds(c.path) <= 6.0]
    prompts = [p for p in prompts if np.abs(p.astype(np.int32)).max() > 3000]  # not the silence files
    voices = {
        "asterisk": prompts[:: max(1, len(prompts) // 5)],
        "librivox": [decode16k(str(c.path)) for c in speech_data.audiobook() if "librivox" in str(c.path)],
        "alsa": [np.concatenate([decode16k(str(a.path)), decode16k(str(b.path))]) for a, b in _pairs()],
    }
    parts: list[np.ndarray] = [np.zeros(RATE // 2)]
    reference: list[Turn] = []
    at = 0.5
    for i in range(turns):
        name = names[i % len(names)]
        clip = voices[name][(i // len(names)) % len(voices[name])].astype(np.float64)
        loud = np.flatnonzero(np.abs(clip) > 300)
        clip = clip[loud[0] : loud[-1] + 1] * (8000 / max(1.0, float(np.abs(clip).max())))
        pause = np.zeros(int(RATE * rng.uniform(0.3, 0.8)))
        reference.append((round(at, 3), round(at + len(clip) / RATE, 3), name))
        parts += [clip, pause]
        at += (len(clip) + len(pause)) / RATE
    mixed = np.concatenate(parts) + rng.normal(0, 30, sum(len(p) for p in parts))
    samples = np.clip(mixed, -32768, 32767).astype(np.int16)
    if len(names) == 1:
        return Recording(f"real monologue, 1 voice ({names[0]})", samples, reference)
    return Recording(f"real mix, {len(names)} voices ({', '.join(names)})", samples, reference)


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _pairs() -> list[tuple[Any, Any]]:
    import speech_data

    names = speech_data.alsa()
    return list(zip(names[::2], names[1::2], strict=False))


# --- scores ------------------------------------------------------------------------------------------------------
def _grid(turns: Sequence[Turn], frames: int, step: float) -> tuple[np.ndarray, list[str]]:
    labels = sorted({t[2] for t in turns})
    grid = np.zeros((frames, len(labels)), dtype=bool)
    for start, end, label in turns:
        grid[int(start / step) : int(end / step), labels.index(label)] = True
    return grid, labels


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], seconds: float, collar: float = 0.25) -> float:
    """NIST diarization error rate (see the module docstring), ``collar`` seconds around reference boundaries
    not scored."""
    step = 0.01
    frames = int(seconds / step) + 1
    ref, _ = _grid(reference, frames, step)
    hyp, _ = _grid(hypothesis, frames, step)
    correct = np.zeros(frames)
    if hyp.shape[1]:
        overlap = ref.T.astype(int) @ hyp.astype(int)
        for r, h in zip(*linear_sum_assignment(-overlap), strict=True):
            correct += ref[:, r] & hyp[:, h]
    error = np.maximum(ref.sum(1), hyp.sum(1)) - correct
    scored = np.ones(frames, dtype=bool)
    for start, end, _ in reference:
        for edge in (start, end):
            scored[max(0, int((edge - collar) / step)) : int((edge + collar) / step)] = False
    return float(error[scored].sum() / max(1, ref.sum(1)[scored].sum()))


def speaker_of(turns: Sequence[Turn], t: float) -> str:
    return min(turns, key=lambda turn: 0.0 if turn[0] <= t <= turn[1] else min(abs(turn[0] - t), abs(turn[1] - t)))[2]


def word_accuracy(reference: Sequence[Turn], words: Sequence[dict[str, Any]]) -> float:
    """Share of recognised words whose speaker is right after the best one-to-one label mapping."""
    if not words:
        return 0.0
    truth = [speaker_of(reference, (w["start"] + w["end"]) / 2) for w in words]
    found = [str(w["speaker"]) for w in words]
    refs, hyps = sorted(set(truth)), sorted(set(found))
    counts = np.zeros((len(refs), len(hyps)))
    for t, h in zip(truth, found, strict=True):
        counts[refs.index(t), hyps.index(h)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(words))


# --- 1. alternatives ---------------------------------------------------------------------------------------------
def mfcc_windows(samples: np.ndarray, spans: list[tuple[float, float]], encoder: VoiceEncoder) -> SpeakerWindows:
    """The model-free baseline: per window, mean and standard deviation of 20 MFCCs, standardised, unit length."""
    import librosa

    audio = samples.astype(np.float32) / 32768.0
    windows = [w for s, e in spans for w in encoder.windows(s, e)]
    rows = []
    for s, e in windows:
        mfcc = librosa.feature.mfcc(y=audio[int(s * RATE) : int(e * RATE)], sr=RATE, n_mfcc=20)
        rows.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
    vectors = np.array(rows)
    vectors = (vectors - vectors.mean(axis=0)) / (vectors.std(axis=0) + 1e-9)
    vectors -= vectors.min()  # cosine distance on non-negative vectors, as the encoder's ReLU output is
    return SpeakerWindows(windows, (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32))


async def speech_spans(samples: np.ndarray, tmp: Path) -> list[tuple[float, float]]:
    path = tmp / "speech.pcm"
    path.write_bytes(samples.astype("<i2").tobytes())
    return [(s.start, s.end) for s in await SileroVAD().detect(str(path))]


ONE_SPEAKER_DISTANCE = 0.28  # the agglomerative alternative's: below this last merge distance, one voice


def agglomerative(vectors: np.ndarray, count: diarize.SpeakerCount) -> np.ndarray:
    """The clustering the pipeline used before NME-SC: average linkage on cosine distance (scipy); one speaker
    when the last merge is closer than ``ONE_SPEAKER_DISTANCE``, else the count whose silhouette is best."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    if n < 2 or count.high == 1:
        return np.zeros(n, dtype=int)
    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    if count.low <= 1 and tree[-1, 2] < ONE_SPEAKER_DISTANCE:
        return np.zeros(n, dtype=int)
    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    best: tuple[float, np.ndarray] | None = None
    for k in range(max(2, count.low), min(n, count.high + 3, diarize.MAX_AUTO_SPEAKERS + 3) + 1):
        labels = diarize._fold_small(vectors, fcluster(tree, t=k, criterion="maxclust") - 1)
        found = len(set(labels.tolist()))
        if found < 2 or not count.low <= found <= min(count.high, diarize.MAX_AUTO_SPEAKERS):
            continue
        score = float(silhouette_score(distances, labels, metric="precomputed"))
        if best is None or score > best[0]:
            best = (score, labels)
    return diarize._renumber(best[1]) if best is not None else np.zeros(n, dtype=int)


def hypothesis(
    spans: list[tuple[float, float]],
    windows: SpeakerWindows,
    count: diarize.SpeakerCount,
    method: Any = None,
    fine: SpeakerWindows | None = None,
) -> list[Turn]:
    """Who spoke when: ``windows`` clustered by ``method``; with ``fine`` (short windows), changes of speaker
    re-placed against the clusters' centroids, as the pipeline does (``speaker_turns.job_turns``)."""
    labels = (method or diarize.cluster)(windows.vectors, count)
    if fine is not None and len(set(labels.tolist())) > 1 and len(fine.spans):
        names = diarize.names(labels.tolist())
        keys, centroids = diarize.centroids(windows.vectors, labels)
        return diarize.resegment(spans, fine.spans, fine.vectors @ centroids.T, [names[k] for k in keys])
    names = diarize.names(labels.tolist())
    return diarize.turns([list(s) for s in spans], windows.spans, [names[int(k)] for k in labels])


async def alternatives(items: list[Recording], tmp: Path) -> None:
    encoder = VoiceEncoder()
    short = speaker_turns.fine_encoder(encoder)
    encoder.embed(np.zeros(RATE, dtype=np.float32), [(0.0, 1.0)])  # load the model before timing
    rows = []
    for rec in items:
        spans = await speech_spans(rec.samples, tmp)
        started, cpu = time.perf_counter(), time.process_time()
        ge2e = encoder.embed(rec.samples.astype(np.float32) / 32768.0, spans)
        ge2e_took = (time.perf_counter() - started, time.process_time() - cpu)
        fine = short.embed(rec.samples.astype(np.float32) / 32768.0, spans)
        both_took = (time.perf_counter() - started, time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        mfcc = mfcc_windows(rec.samples, spans, encoder)
        mfcc_took = (time.perf_counter() - started, time.process_time() - cpu)
        candidates = [
            ("GE2E (resemblyzer)", "NME-SC + short windows", ge2e, both_took, diarize.cluster, fine),
            ("GE2E (resemblyzer)", "NME-SC", ge2e, ge2e_took, diarize.cluster, None),
            ("GE2E (resemblyzer)", "agglomerative", ge2e, ge2e_took, agglomerative, None),
            ("MFCC stats", "NME-SC", mfcc, mfcc_took, diarize.cluster, None),
        ]
        for model, method, windows, took, clustering, short_windows in candidates:
            auto = hypothesis(spans, windows, diarize.SpeakerCount(), clustering, short_windows)
            exact = diarize.SpeakerCount(rec.speakers, rec.speakers)
            oracle = hypothesis(spans, windows, exact, clustering, short_windows)
            rows.append(
                [
                    rec.name,
                    model,
                    method,
                    f"{rec.speakers}/{len({t[2] for t in auto})}",
                    f"{100 * der(rec.turns, auto, rec.seconds):.1f}",
                    f"{100 * der(rec.turns, auto, rec.seconds, collar=0):.1f}",
                    f"{100 * der(rec.turns, oracle, rec.seconds):.1f}",
                    f"{took[0] / rec.seconds:.4f}",
                    f"{took[1] / rec.seconds:.4f}",
                ]
            )
    print("\n1. Speaker embeddings and clusterings over the same speech windows (DER %, collar 0.25 s; DER0: none)")
    header = ["recording", "embedding", "clustering", "speakers true/found", "DER", "DER0", "DER, true count"]
    table([*header, "s per audio s", "CPU s per audio s"], rows)


WINDOWINGS = [(1.6, 0.75), (1.6, 0.5), (1.6, 0.4), (2.0, 0.5), (1.0, 0.5)]  # (window, hop) seconds


async def windowings(items: list[Recording], tmp: Path) -> None:
    """GE2E + NME-SC with other window lengths and hops: speakers found and DER per recording."""
    rows = []
    spans = [await speech_spans(rec.samples, tmp) for rec in items]
    for window, hop in WINDOWINGS:
        encoder = VoiceEncoder(window=window, hop=hop)
        cells, right = [f"{window} / {hop}"], 0
        for rec, own in zip(items, spans, strict=True):
            auto = hypothesis(own, encoder.embed(rec.samples.astype(np.float32) / 32768.0, own), diarize.SpeakerCount())
            found = len({t[2] for t in auto})
            right += found == rec.speakers
            cells.append(f"{rec.speakers}/{found}, {100 * der(rec.turns, auto, rec.seconds):.1f}")
        rows.append([*cells, f"{right}/{len(items)}"])
    print("\n1b. Window / hop (s), GE2E + NME-SC: speakers true/found, DER % (collar 0.25 s)")
    table(["window / hop", *(r.name.split(" (")[0] for r in items), "count right"], rows)


# --- 2. whole jobs -----------------------------------------------------------------------------------------------
def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def cpu_seconds() -> float:
    """CPU seconds of this process (every thread) and of the speakers stage's child process."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for pid in speaker_process.child_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def one_job(rec: Recording, tmp: Path, options: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
    """The job's result, its wall time and the CPU seconds this process and the speakers child spent
    meanwhile (every thread); the seconds of each stage's steps go to ``STAGES``."""
    path = tmp / "job.wav"
    write_wav(path, rec.samples)
    settings = Settings(database_url=f"sqlite:///{tmp}/jobs-{time.time_ns()}.db", **FAST)
    cpu = cpu_seconds()
    job, events, makespan = await run_job(path, settings, options)
    assert job.result is not None, job.error
    STAGES.clear()
    STAGES.update({stage: stage_span(events, stage) for stage in ("decode", "speech", "speakers", "transcribe")})
    return job.result, makespan, cpu_seconds() - cpu


def stage_span(events: list[Any], stage: str) -> float:
    """Seconds from the stage's first step starting to its last step finishing (a ``transcribe[i]`` step also
    holds its wait for a slot and for the speakers, so the sum of its steps' seconds would overcount)."""
    times = [(e.type, e.at) for e in events if str(e.data.get("key", "")).split("[")[0] == stage]
    starts = [at for kind, at in times if kind == "step.started"]
    ends = [at for kind, at in times if kind == "step.finished"]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


async def jobs(items: list[Recording], tmp: Path, long_minutes: float) -> None:
    await one_job(items[0], tmp, {})  # models loaded once per process: not in any row
    rows = []
    for rec in items:
        result, on, on_cpu = await one_job(rec, tmp, {})
        _, off, off_cpu = await one_job(rec, tmp, {"diarize": False})
        words = [w for c in result["conversations"] for w in c["words"]]
        found = len(result["speakers"])
        accuracy = word_accuracy(rec.turns, words)
        rows.append([rec.name, f"{rec.speakers}/{found}", str(len(words)), f"{accuracy:.3f}"])
        rows[-1] += [f"{on / rec.seconds:.3f}", f"{off / rec.seconds:.3f}", f"{(on_cpu - off_cpu) / rec.seconds:.3f}"]
    print("\n2. Whole audio jobs, offline providers (speaker-attributed words after the best label mapping)")
    header = ["recording", "speakers true/found", "words", "right speaker", "RTF", "RTF, diarize off"]
    table([*header, "diarization CPU s per audio s"], rows)
    meetings = [r for r in items if "SYNTHETIC" in r.name and r.speakers > 1]
    reps = int(np.ceil(long_minutes * 60 / sum(r.seconds for r in meetings)))
    joined = Recording(
        "long", np.concatenate([r.samples for r in meetings] * reps), [t for r in meetings for t in r.turns]
    )
    _, on, on_cpu = await one_job(joined, tmp, {})
    stages = dict(STAGES)
    _, off, off_cpu = await one_job(joined, tmp, {"diarize": False})
    print(f"\n{joined.seconds / 60:.1f} min of the SYNTHETIC meetings in one job, {os.cpu_count()} cores:")
    table(
        ["diarize", "seconds", "real-time factor", "CPU s per audio s"],
        [
            ["on", f"{on:.1f}", f"{on / joined.seconds:.4f}", f"{on_cpu / joined.seconds:.4f}"],
            ["off", f"{off:.1f}", f"{off / joined.seconds:.4f}", f"{off_cpu / joined.seconds:.4f}"],
        ],
    )
    print(f"\nwhere the time goes (diarize on; steps' seconds, {os.cpu_count()} cores):")
    rows = [[k, f"{v:.2f}", f"{v / joined.seconds:.4f}"] for k, v in stages.items()]
    table(["stage", "seconds", "per audio second"], [*rows, ["whole job", f"{on:.2f}", f"{on / joined.seconds:.4f}"]])


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def joined(name: str, parts: Sequence[Recording], repeat: int = 1) -> Recording:
    """``parts`` end to end, ``repeat`` times (the reference turns shifted along)."""
    samples: list[np.ndarray] = []
    reference: list[Turn] = []
    at = 0.0
    for rec in list(parts) * repeat:
        samples.append(rec.samples)
        reference += [(s + at, e + at, who) for s, e, who in rec.turns]
        at += rec.seconds
    return Recording(name, np.concatenate(samples), reference)


async def many_voices(items: list[Recording], tmp: Path) -> None:
    """Section 3: meetings joined into 4-10 voices, with and without the cap on the neighbour search's floor."""
    m1, m2, m3, m5 = items[1], items[2], items[3], items[6]
    joins = [
        joined("meetings 1+2, twice (4 voices)", [m1, m2], 2),
        joined("meetings 1+2+3, twice (6 voices)", [m1, m2, m3], 2),
        joined("meetings 1+2+5 (8 voices)", [m1, m2, m5]),
        joined("meetings 1+2+3+5, twice (10 voices)", [m1, m2, m3, m5], 2),
    ]
    encoder = VoiceEncoder()
    short = speaker_turns.fine_encoder(encoder)
    floor = diarize.PRUNE_FLOOR
    rows = []
    for rec in items + joins:
        spans = await speech_spans(rec.samples, tmp)
        samples = rec.samples.astype(np.float32) / 32768.0
        windows, fine = encoder.embed(samples, spans), short.embed(samples, spans)
        for label, cap in (("share only (before)", 10**9), (f"capped at {floor}", floor)):
            diarize.PRUNE_FLOOR = cap
            auto = hypothesis(spans, windows, diarize.SpeakerCount(), None, fine)
            exact = hypothesis(spans, windows, diarize.SpeakerCount(rec.speakers, rec.speakers), None, fine)
            found = f"{rec.speakers}/{len({t[2] for t in auto})}"
            rows.append([rec.name, f"{rec.seconds:.0f}", str(len(windows.spans)), label, found])
            rows[-1] += [
                f"{100 * der(rec.turns, auto, rec.seconds):.1f}",
                f"{100 * der(rec.turns, exact, rec.seconds):.1f}",
            ]
        diarize.PRUNE_FLOOR = floor
    print("\n3. Many voices: the neighbour search's floor (DER %, collar 0.25 s)")
    table(["recording", "s", "windows", "floor", "speakers true/found", "DER", "DER, true count"], rows)


async def main(args: argparse.Namespace) -> None:
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.min_speech is not None:
        speech_pipeline.set_min_speech(args.min_speech)
    items = recordings(args.cache)
    if args.many_voices:
        with tempfile.TemporaryDirectory() as tmp:
            await many_voices(items, Path(tmp))
        return
    print(json.dumps({r.name: f"{r.seconds:.1f} s, {r.speakers} speakers" for r in items}, indent=1))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_alternatives:
            await alternatives(items, Path(tmp))
        if not args.skip_windowings:
            await windowings(items, Path(tmp))
        if not args.skip_jobs:
            await jobs(items, Path(tmp), args.long_minutes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / "cache" / "diarization")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--skip-windowings", action="store_true")
    parser.add_argument("--skip-alternatives", action="store_true")
    parser.add_argument("--long-minutes", type=float, default=5.0)
    parser.add_argument("--min-speech", type=float, default=None, help="the VAD's shortest speech span, seconds")
    parser.add_argument("--many-voices", action="store_true", help="only section 3: meetings joined into 4-10 voices")
    asyncio.run(main(parser.parse_args()))
