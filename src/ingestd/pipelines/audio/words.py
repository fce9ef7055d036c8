"""Words with speakers: a clip's transcript on its file's timeline, each word given the job's speaker.

A word takes the speaker whose turn covers its midpoint (``diarize``). A transcriber's own labels (Deepgram
numbers speakers per clip, so ``speaker_0`` of one clip need not be ``speaker_0`` of the next) are mapped onto
the job's speakers: each of its labels becomes the job speaker its words overlap most. On a separated channel
every word is the channel's. Transcript segments are split wherever the speaker changes, so no segment
straddles two voices; ``utterances`` are the runs of consecutive words of one speaker in a conversation.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestd.models import JSON
from ingestd.pipelines.audio.diarize import SpeakerTimeline
from ingestd.pipelines.audio.plan import ClipMap
from ingestd.providers.base import TranscriptSegment, TranscriptWord


class Attribution:
    """Who said a clip's words: a fixed speaker (a channel), or the job's turns of the clip's track, or nobody."""

    def __init__(self, turns: SpeakerTimeline | None, fixed: str | None = None) -> None:
        self.turns, self.fixed = turns, fixed
        self.mapping: dict[str, str] = {}

    def learn(self, words: Sequence[tuple[TranscriptWord, float, float]]) -> None:
        """Map the transcriber's per-clip labels onto the job's speakers by the time their words overlap."""
        if self.turns is None:
            return
        votes: dict[str, dict[str, float]] = {}
        for word, start, end in words:
            if word.speaker is not None:
                ours = self.turns.most(start, end)
                if ours is not None:
                    tally = votes.setdefault(word.speaker, {})
                    tally[ours] = tally.get(ours, 0.0) + max(end - start, 0.01)
        self.mapping = {label: max(t.items(), key=lambda item: item[1])[0] for label, t in votes.items()}

    def word(self, word: TranscriptWord, start: float, end: float) -> str | None:
        if self.fixed is not None:
            return self.fixed
        if word.speaker is not None:
            return self.mapping.get(word.speaker, word.speaker if self.turns is None else None) or self._at(start, end)
        return self._at(start, end)

    def segment(self, segment: TranscriptSegment, start: float, end: float) -> str | None:
        if self.fixed is not None:
            return self.fixed
        if segment.speaker is not None and segment.speaker in self.mapping:
            return self.mapping[segment.speaker]
        if self.turns is None:
            return segment.speaker
        return self.turns.most(start, end)

    def _at(self, start: float, end: float) -> str | None:
        return self.turns.at((start + end) / 2) if self.turns is not None else None


def attribute(
    segments: Sequence[TranscriptSegment], timeline: ClipMap, file: int, who: Attribution
) -> tuple[list[JSON], list[JSON]]:
    """The clip's segments (split at speaker changes) and words, on the file's timeline, with speakers."""
    placed = [[(w, timeline.to_file(w.start), timeline.to_file(w.end, is_end=True)) for w in s.words] for s in segments]
    who.learn([w for words in placed for w in words])
    out_segments: list[JSON] = []
    out_words: list[JSON] = []
    for segment, words in zip(segments, placed, strict=True):
        if not segment.text.strip():
            continue
        if not words:
            start, end = timeline.to_file(segment.start), timeline.to_file(segment.end, is_end=True)
            speaker = who.segment(segment, start, end)
            out_segments.append(_segment(file, start, end, speaker, segment.text.strip()))
            continue
        run: list[JSON] = []
        for word, start, end in words:
            item = _word(file, word, start, end, who.word(word, start, end))
            if run and run[-1]["speaker"] != item["speaker"]:
                out_segments.append(_from_words(run))
                run = []
            run.append(item)
            out_words.append(item)
        out_segments.append(_from_words(run))
    return out_segments, out_words


def _word(file: int, word: TranscriptWord, start: float, end: float, speaker: str | None) -> JSON:
    return {
        "word": word.word,
        "start": start,
        "end": end,
        "confidence": word.confidence,
        "speaker": speaker,
        "file": file,
    }


def _segment(file: int, start: float, end: float, speaker: str | None, text: str) -> JSON:
    return {"file": file, "start": start, "end": end, "speaker": speaker, "text": text}


def _from_words(words: list[JSON]) -> JSON:
    text = " ".join(w["word"] for w in words)
    return _segment(words[0]["file"], words[0]["start"], words[-1]["end"], words[0]["speaker"], text)


def utterances(words: Sequence[JSON]) -> list[JSON]:
    """Runs of consecutive words of one speaker (in one file), in time order."""
    out: list[JSON] = []
    for word in words:
        last = out[-1] if out else None
        if last is not None and last["speaker"] == word["speaker"] and last["file"] == word["file"]:
            last["end"] = word["end"]
            last["text"] += " " + word["word"]
            last["words"] += 1
        else:
            out.append({k: word[k] for k in ("speaker", "file", "start", "end")} | {"text": word["word"], "words": 1})
    return out


__all__ = ["Attribution", "attribute", "utterances"]
