"""From speech spans to work: conversations (spans closer than the gap) and clips (what one transcription gets).

A conversation is speech with no silence longer than ``conversation_gap_seconds`` inside it. When every file
has a ``captured_at``, all files share one timeline and a conversation may run from one file into the next (a
wearable uploads its recording in pieces); otherwise each file is its own timeline.

A clip is the speech of one conversation in one file, at most ``max_clip_seconds`` of it: the transcriber gets
the speech spans joined, without the silences between them (hosted speech-to-text bills every second sent),
except pauses shorter than ``BRIDGE_SECONDS``, which stay in, and each span widened by ``CLIP_PAD_SECONDS``.
Cut tight (the VAD's spans padded 0.2 s, every pause out), the end of one phrase met the start of the next and
the first syllable of a phrase was clipped; Whisper then lost or changed words there ("I am sorry" read
"sorry", "please hold" read "he is told", the first "hello" of a call dropped): real speech WER 7.2 % through
the pipeline's clips against 6.8 % for the transcriber on the whole clips; 0.5 s of padding and pauses under
2 s kept gave 6.8 %, padding alone 7.2 %, pauses alone 7.2 % (faster-whisper's own VAD defaults are alike:
0.4 s padding, 2 s of silence to cut).
``ClipMap`` takes a time in the joined clip back to the file's timeline.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ingestd.models import JSON

BRIDGE_SECONDS = 2.0  # a pause shorter than this between two speech spans of a clip is transcribed with them
CLIP_PAD_SECONDS = 0.3  # more audio around each span for the transcriber (on top of the VAD's own 0.2 s)

Span = tuple[float, float]


@dataclass(frozen=True)
class TimedSpan:
    file: int  # the track (a file, or one channel of a file)
    start: float  # seconds in its file
    end: float
    origin: float  # where its file starts on the shared timeline (0 when files do not share one)
    timeline: int  # -1: the shared timeline; else the file's own

    @property
    def at(self) -> float:
        return self.origin + self.start

    @property
    def until(self) -> float:
        return self.origin + self.end


def plan_work(
    speech: Sequence[Sequence[Span]],
    captured_at: Sequence[datetime | None],
    *,
    gap_seconds: float,
    max_clip_seconds: float,
    files: Sequence[int] | None = None,
) -> JSON:
    """Conversations and clips from per-track speech spans (JSON, so the plan can be checkpointed).

    A track is a file, or one channel of a file (``files[t]``: the file of track ``t``; default: track t is
    file t); ``captured_at`` is per track. Tracks of one file share its timeline, so the channels of a call
    make one conversation; a clip holds the speech of one track."""
    files = list(files) if files is not None else list(range(len(speech)))
    shared = bool(captured_at) and all(c is not None for c in captured_at)
    base = min(c.timestamp() for c in captured_at if c is not None) if shared else 0.0
    spans = sorted(
        (
            TimedSpan(t, s, e, (captured_at[t].timestamp() - base) if shared else 0.0, -1 if shared else files[t])  # type: ignore[union-attr]
            for t, track_spans in enumerate(speech)
            for s, e in track_spans
        ),
        key=lambda t: (t.timeline, t.at),
    )
    conversations: list[JSON] = []
    clips: list[JSON] = []
    for group in _conversations(spans, gap_seconds):
        index = len(conversations)
        first = len(clips)
        for track, clip_spans in _clips(group, max_clip_seconds):
            clip = {"index": len(clips), "conversation": index, "file": files[track], "track": track}
            clips.append({**clip, "spans": clip_spans})
        conversations.append({"index": index, "clips": list(range(first, len(clips)))})
    return {"conversations": conversations, "clips": clips}


def _conversations(spans: list[TimedSpan], gap: float) -> list[list[TimedSpan]]:
    groups: list[list[TimedSpan]] = []
    until = 0.0  # the latest end in the group so far (tracks of one file overlap)
    for span in spans:
        last = groups[-1][-1] if groups else None
        if last is not None and last.timeline == span.timeline and span.at - until < gap:
            groups[-1].append(span)
            until = max(until, span.until)
        else:
            groups.append([span])
            until = span.until
    return [_by_track(g) for g in groups]


def _by_track(group: list[TimedSpan]) -> list[TimedSpan]:
    """A clip holds one track: the spans of each track together, tracks in the order they first speak."""
    first: dict[int, int] = {}
    for span in group:
        first.setdefault(span.file, len(first))
    return sorted(group, key=lambda t: (first[t.file], t.at))


def _clips(group: list[TimedSpan], max_seconds: float) -> list[tuple[int, list[list[float]]]]:
    """Split a conversation's spans into clips of one file and at most ``max_seconds`` of speech each."""
    clips: list[tuple[int, list[list[float]]]] = []
    length = 0.0
    for span, (padded_start, padded_end) in zip(group, _padded(group), strict=True):
        for start, end in _pieces(padded_start, padded_end, max_seconds):
            last = clips[-1][1][-1] if clips and clips[-1][0] == span.file else None
            gap = start - last[1] if last is not None else float("inf")
            if last is not None and 0 <= gap < BRIDGE_SECONDS and length + gap + (end - start) <= max_seconds:
                last[1] = round(end, 3)  # a short pause stays in the clip: Whisper reads across it as spoken
                length += gap + end - start
                continue
            if not clips or clips[-1][0] != span.file or length + (end - start) > max_seconds:
                clips.append((span.file, []))
                length = 0.0
            clips[-1][1].append([round(start, 3), round(end, 3)])
            length += end - start
    return clips


def _padded(group: list[TimedSpan]) -> list[Span]:
    """Each span widened by ``CLIP_PAD_SECONDS`` on both sides for the transcriber, never into a neighbouring
    span of its track nor before the file's start (past the file's end, reading stops at the end)."""
    out: list[Span] = []
    for i, span in enumerate(group):
        before = group[i - 1] if i and group[i - 1].file == span.file else None
        after = group[i + 1] if i + 1 < len(group) and group[i + 1].file == span.file else None
        start = max(0.0, span.start - CLIP_PAD_SECONDS, out[-1][1] if before is not None else 0.0)
        end = span.end + CLIP_PAD_SECONDS if after is None else min(span.end + CLIP_PAD_SECONDS, after.start)
        out.append((min(start, span.start), max(end, span.end)))
    return out


def _pieces(start: float, end: float, max_seconds: float) -> list[Span]:
    out: list[Span] = []
    while end - start > max_seconds:
        out.append((start, start + max_seconds))
        start += max_seconds
    out.append((start, end))
    return out


class ClipMap:
    """Maps a time in a clip (its speech spans joined end to end) back to the file's timeline."""

    def __init__(self, spans: Sequence[Sequence[float]]) -> None:
        self.spans = [(float(s), float(e)) for s, e in spans]
        self.offsets: list[float] = []  # where each span starts inside the clip
        total = 0.0
        for s, e in self.spans:
            self.offsets.append(total)
            total += e - s
        self.duration = total

    def to_file(self, t: float, *, is_end: bool = False) -> float:
        """The file time of clip time ``t``; an end exactly on a join stays in the span before it."""
        i = (bisect.bisect_left if is_end else bisect.bisect_right)(self.offsets, t) - 1
        i = max(0, min(i, len(self.spans) - 1))
        start, end = self.spans[i]
        return round(min(end, start + max(0.0, t - self.offsets[i])), 3)


def sample_range(start: float, end: float, sample_rate: int) -> tuple[int, int]:
    """Byte offsets of [start, end) seconds in s16le mono PCM."""
    return int(start * sample_rate) * 2, int(end * sample_rate) * 2


__all__ = ["ClipMap", "plan_work", "sample_range"]
