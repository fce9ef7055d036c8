"""The ``speakers`` stage: speaker turns of every track of a job, from one clustering of all their voices.

Runs after ``speech``, as one step beside ``transcribe`` (its checkpoint holds only the turns; ``job_speakers``
runs in a child process, see ``speaker_process``); each clip's words get their speakers once both are done.
Each mixed track (a file, or a mono file in ``separate`` mode) has its speech cut into windows and embedded
(``providers.speakers``); all windows of the job are clustered together (``diarize``), so labels hold across
clips and files. A separated channel needs no embedding: its turns are its speech, labelled ``channel_<n>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ingestd.models import JSON
from ingestd.pipelines.audio import channels, diarize
from ingestd.pipelines.audio.workspace import read_spans
from ingestd.providers.base import SAMPLE_RATE
from ingestd.providers.speakers import SpeakerWindows, VoiceEncoder

# window, hop, shortest span (s) of the windows that re-place changes of speaker. Every 0.4 s (was 0.2): half
# their CPU (0.042 -> 0.022 CPU-s per audio s), the same words' speakers within a word either way on the
# bench recordings (docs/providers.md, "Speakers offline").
FINE = (0.8, 0.4, 0.3)


def fine_encoder(encoder: VoiceEncoder) -> VoiceEncoder:
    """The encoder for the short windows that place changes of speaker (``diarize.resegment``)."""
    return VoiceEncoder(*FINE, threads=encoder.threads, runtime=encoder.runtime)


def embed_track(encoder: VoiceEncoder, path: str, speech: Sequence[Sequence[float]]) -> SpeakerWindows:
    """Windows over the speech of one track's PCM file, embedded; the audio is read one span at a time."""
    spans: list[tuple[float, float]] = []
    vectors: list[np.ndarray] = []
    for start, end in speech:
        pcm = read_spans(path, [(start, end)])
        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        found = encoder.embed(audio, [(0.0, len(audio) / SAMPLE_RATE)])
        spans += [(round(s + float(start), 3), round(e + float(start), 3)) for s, e in found.spans]
        vectors.append(found.vectors)
    return SpeakerWindows(spans, np.concatenate(vectors) if vectors else np.zeros((0, 256), dtype=np.float32))


def job_speakers(
    encoder: VoiceEncoder,
    tracks: Sequence[JSON],
    speech: Sequence[Sequence[Sequence[float]]],
    paths: dict[int, str],
    count: diarize.SpeakerCount,
) -> JSON:
    """``job_turns`` of the tracks whose PCM files are ``paths`` (track index -> path) embedded with
    ``encoder``, then their short windows with ``fine_encoder(encoder)``: the whole stage as one call of plain
    data, so it can run in another process."""
    windows = {index: embed_track(encoder, path, speech[index]) for index, path in sorted(paths.items())}
    short = fine_encoder(encoder)

    def fine(index: int) -> SpeakerWindows:
        return embed_track(short, paths[index], speech[index])

    return job_turns(tracks, speech, windows, count, fine)


def job_turns(
    tracks: Sequence[JSON],
    speech: Sequence[Sequence[Sequence[float]]],
    windows: dict[int, SpeakerWindows],
    count: diarize.SpeakerCount,
    fine: Callable[[int], SpeakerWindows] | None = None,
) -> JSON:
    """Turns per track (``[[start, end, speaker], ...]``) and the job's speakers in order of appearance.
    ``fine(track)``: the short windows of a track, embedded only when two speakers or more were found."""
    order = sorted(windows)
    vectors = [windows[t].vectors for t in order if len(windows[t].spans)]
    labels = diarize.cluster(np.concatenate(vectors), count) if vectors else np.zeros(0, dtype=int)
    names = diarize.names(labels.tolist())
    keys, centroids = diarize.centroids(np.concatenate(vectors), labels) if len(names) > 1 else ([], None)
    turns: list[list[list[object]]] = []
    at = 0
    for index, track in enumerate(tracks):
        if index not in windows:  # a separated channel is its own speaker; a mixed track undiarized has none
            speaker = None if track["channel"] is None else channels.channel_speaker(int(track["channel"]))
            turns.append([[s, e, speaker] for s, e in speech[index]] if speaker else [])
            continue
        own = [names[int(k)] for k in labels[at : at + len(windows[index].spans)]]
        at += len(own)
        short = fine(index) if fine is not None and centroids is not None else None
        if short is not None and len(short.spans):
            scores = short.vectors @ centroids.T  # type: ignore[union-attr]
            track_turns = diarize.resegment(speech[index], short.spans, scores, [names[k] for k in keys])
        else:
            track_turns = diarize.turns(speech[index], windows[index].spans, own)
        turns.append([list(t) for t in track_turns])
    speakers = list(dict.fromkeys(str(t[2]) for track_turns in turns for t in track_turns))
    return {"turns": turns, "speakers": speakers}


__all__ = ["embed_track", "fine_encoder", "job_speakers", "job_turns"]
