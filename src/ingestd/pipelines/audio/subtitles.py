"""An ``audio`` result as subtitles or plain text: SRT, WebVTT and a speaker-labelled transcript.

The cues are the result's transcript segments, in the order of the conversations (files in upload order, then
time), each labelled with its speaker when the pipeline knows it ("Speaker 1: …" in SRT and text, a ``<v>``
voice span in WebVTT). Times are seconds in the segment's file; a job with several files gets one timeline per
file, so SRT and WebVTT (one timeline) show the first file's cues first, each file restarting at its own zero.
The text export is one line per speaker turn, with the conversation's start time when it is known.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ingestd.models import JSON

FORMATS = {"srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain"}


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: str | None
    text: str


class NoTranscript(ValueError):
    """The result has no transcript to export (not an ``audio`` result, or nothing was said)."""


def speaker_name(label: str | None) -> str | None:
    """ "speaker_1" → "Speaker 1"; other labels as they are."""
    if not label:
        return None
    head, _, number = label.partition("_")
    return f"{head.capitalize()} {number}" if number.isdigit() else label


def cues(result: JSON) -> list[Cue]:
    """The transcript segments of every conversation as cues (``NoTranscript`` when there are none)."""
    conversations = result.get("conversations") if isinstance(result, dict) else None
    if not isinstance(conversations, list):
        raise NoTranscript("the result has no conversations (not an audio result)")
    out = [
        Cue(float(seg["start"]), max(float(seg["end"]), float(seg["start"])), seg.get("speaker"), str(seg["text"]))
        for conv in conversations
        for seg in conv.get("transcript") or []
        if str(seg.get("text", "")).strip()
    ]
    if not out:
        raise NoTranscript("the result's transcript is empty")
    return out


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _labelled(cue: Cue) -> str:
    name = speaker_name(cue.speaker)
    return f"{name}: {cue.text}" if name else cue.text


def to_srt(result: JSON) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, "Speaker N: " before the text."""
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{_one_line(_labelled(c))}\n"
        for i, c in enumerate(cues(result), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: JSON) -> str:
    """WebVTT: ``HH:MM:SS.mmm`` times, the speaker as a voice span (``<v Speaker 1>``)."""
    blocks = ["WEBVTT\n"]
    for cue in cues(result):
        name = speaker_name(cue.speaker)
        text = _vtt_escape(_one_line(cue.text))
        voice = f"<v {_vtt_escape(name)}>{text}" if name else text
        blocks.append(f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{voice}\n")
    return "\n".join(blocks)


def _turns(conv: JSON) -> Iterator[tuple[str | None, str]]:
    """Consecutive segments of one speaker joined into one turn."""
    speaker: str | None = None
    said: list[str] = []
    for seg in conv.get("transcript") or []:
        if said and seg.get("speaker") != speaker:
            yield speaker, " ".join(said)
            said = []
        speaker = seg.get("speaker")
        said.append(str(seg["text"]).strip())
    if said:
        yield speaker, " ".join(said)


def to_text(result: JSON) -> str:
    """Plain text: per conversation a header (title and start time when known), then one line per turn."""
    cues(result)  # raises NoTranscript when there is nothing to write
    parts = []
    for conv in result["conversations"]:
        lines = [_labelled(Cue(0.0, 0.0, speaker, text)) for speaker, text in _turns(conv)]
        if not lines:
            continue
        header = " · ".join(str(v) for v in (conv.get("title"), conv.get("started_at")) if v)
        parts.append("\n".join([f"# {header}" if header else f"# conversation {conv.get('index', 0) + 1}", *lines]))
    return "\n\n".join(parts) + "\n"


def _one_line(text: str) -> str:
    # A blank line ends a cue in both formats; a transcript's own line breaks must not.
    return " ".join(text.split())


def render(result: JSON, fmt: str) -> str:
    """The result in ``fmt`` (a key of ``FORMATS``)."""
    writers = {"srt": to_srt, "vtt": to_vtt, "txt": to_text}
    return writers[fmt](result)


__all__ = ["FORMATS", "Cue", "NoTranscript", "cues", "render", "speaker_name", "to_srt", "to_text", "to_vtt"]
