"""The stages of the audio pipeline, written against ``ingestd.pipeline.Context``.

``decode`` (every file, one step: an unusable file fails the job here) → ``speech`` (voice activity per track: a
file, or each channel of one with ``channels: "separate"``; then the plan: conversations and clips) →
``speakers`` (who spoke when, one clustering of the whole job's voices, in a child process: ``speaker_process``)
beside ``transcribe[i]`` per clip, in parallel, each clip's words given the job's speakers once both are done →
``structure[i]`` per conversation, in parallel, each running its three independent questions
(``structure[i].structure``, ``structure[i].folder``, ``structure[i].discard``) at once as steps of their own, so a
retried or resumed question never pays for the others again → the result (``result.assemble``, no provider calls).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ingestd.models import JSON
from ingestd.pipeline import Context, MapResult
from ingestd.pipelines.audio import channels, diarize, speaker_process, speaker_turns
from ingestd.pipelines.audio import result as results
from ingestd.pipelines.audio.analysis import Analyzer, ChatAnalyzer, ConversationText, ExtractiveAnalyzer
from ingestd.pipelines.audio.diarize import SpeakerTimeline
from ingestd.pipelines.audio.inputs import AudioInput, captured_at
from ingestd.pipelines.audio.plan import ClipMap, plan_work
from ingestd.pipelines.audio.words import Attribution, attribute
from ingestd.pipelines.audio.workspace import Workspace
from ingestd.providers.base import (
    SAMPLE_RATE,
    SpeechToText,
    Transcript,
    TranscriptSegment,
    TranscriptWord,
    VoiceActivityDetector,
)
from ingestd.providers.registry import Providers, build_providers
from ingestd.providers.speakers import VoiceEncoder
from ingestd.settings import Settings

A = TypeVar("A")
B = TypeVar("B")
HOSTED_TRANSCRIBE_CONCURRENCY = 8
STRUCTURE_CONCURRENCY = 8
QUESTIONS = ("structure", "folder", "discard")


@dataclass(frozen=True)
class AudioProviders:
    """What the pipeline runs on. ``transcribe_concurrency``: clips at once unless the job says otherwise."""

    vad: VoiceActivityDetector
    stt: SpeechToText
    analyzer: Analyzer
    transcribe_concurrency: int = HOSTED_TRANSCRIBE_CONCURRENCY
    hosted: Providers | None = None  # owns the hosted clients' shared HTTP client
    voices: VoiceEncoder = field(default_factory=VoiceEncoder)  # speaker embeddings (offline, always)

    async def aclose(self) -> None:
        """Close the hosted clients' HTTP connections (a process that exits need not)."""
        if self.hosted is not None:
            await self.hosted.aclose()


def default_providers(settings: Settings) -> AudioProviders:
    """The providers ``settings`` choose (``INGESTD_VAD_PROVIDER``, ``_STT_PROVIDER``, ``_LLM_PROVIDER``).

    The offline speech-to-text model uses every core for one clip, so clips are transcribed one at a time.
    """
    providers = build_providers(settings)
    analyzer: Analyzer = ChatAnalyzer(providers.chat) if providers.chat is not None else ExtractiveAnalyzer()
    offline = settings.stt_provider.strip().lower() == "offline"
    concurrency = 1 if offline else HOSTED_TRANSCRIBE_CONCURRENCY
    return AudioProviders(providers.vad, providers.stt, analyzer, concurrency, providers)


def _without_calls(transcript: Transcript) -> Transcript:
    # Context.call counts the call itself; the answer's own ``calls`` would count it twice.
    return dataclasses.replace(transcript, usage={k: v for k, v in transcript.usage.items() if k != "calls"})


class AudioRun:
    """``run(ctx, inp)`` of the pipeline; providers are built on first use (models load lazily)."""

    def __init__(self, settings: Settings, providers: AudioProviders | None = None) -> None:
        self.settings = settings
        self._providers = providers

    @property
    def providers(self) -> AudioProviders:
        if self._providers is None:
            self._providers = default_providers(self.settings)
        return self._providers

    async def run(self, ctx: Context, inp: AudioInput) -> JSON:
        """decode → speech → transcribe[i] → structure[i] → the result."""
        workspace = Workspace(ctx, self.settings.audio_max_file_seconds, self.settings.audio_max_job_seconds)
        try:
            return await self._run(ctx, inp, workspace)
        finally:
            workspace.close()

    async def _run(self, ctx: Context, inp: AudioInput, workspace: Workspace) -> JSON:
        providers = self.providers

        async def decode() -> list[JSON]:
            for file in ctx.job.files:
                captured_at(file)  # a malformed time fails here, at decode, naming the file
            return [d.as_json() for d in await workspace.decode_all()]

        files: list[JSON] = await ctx.step("decode", decode)
        plan: JSON = await ctx.step("speech", lambda: self._speech(ctx, inp, workspace, files))
        # The speakers stage runs beside transcription (in a child process); each clip waits for it only to
        # give its words their speakers.
        speakers = asyncio.ensure_future(ctx.step("speakers", lambda: self._speakers(ctx, inp, workspace, plan)))
        both = self._transcribe_and_structure(ctx, inp, workspace, plan, speakers)
        _, (transcribed, structured) = await _both(speakers, both)
        conversations = results.conversations(ctx.job.files, inp, plan, transcribed)
        names: dict[str, str | None] = {"vad": providers.vad.name, "stt": _transcriber(providers.stt, inp).name}
        names["speakers"] = providers.voices.name if inp.diarize else None
        names["structure"] = providers.analyzer.provider
        return results.assemble(
            ctx.job.files, files, plan, transcribed, conversations, structured, names, providers.analyzer.method
        )

    async def _transcribe_and_structure(
        self, ctx: Context, inp: AudioInput, workspace: Workspace, plan: JSON, speakers: asyncio.Future[JSON]
    ) -> tuple[MapResult[JSON], MapResult[JSON]]:
        """The ``transcribe`` and ``structure`` maps, overlapped: a conversation is structured as soon as its own
        clips are transcribed, not when every clip is (a slow clip delays only its own conversation).

        A ``transcribe[i]`` step checkpoints the clip's transcript as soon as it is transcribed (a crash never
        pays for it twice); its words get their speakers after, outside the step, once ``speakers`` is done
        (``_label``: cheap and deterministic, so a resumed job labels its restored clips the same way)."""
        clips: list[JSON] = plan["clips"]
        loop = asyncio.get_running_loop()
        ready: dict[int, asyncio.Future[JSON | None]] = {i: loop.create_future() for i in range(len(clips))}
        labelled: dict[int, asyncio.Future[JSON]] = {}

        def label(index: int, raw: JSON) -> asyncio.Future[JSON]:
            if index not in labelled:
                labelled[index] = asyncio.ensure_future(self._label(plan, clips[index], raw, speakers))
                labelled[index].add_done_callback(lambda task: _settle(ready[index], task))
            return labelled[index]

        async def transcribe(index: int, clip: JSON) -> JSON:
            raw = await self._transcribe(ctx, inp, workspace, plan, clip)
            label(index, raw)
            return raw

        async def transcribe_all() -> MapResult[JSON]:
            concurrency = inp.transcribe_concurrency or self.providers.transcribe_concurrency
            try:
                done = await ctx.map("transcribe", clips, transcribe, concurrency=concurrency)
                ok = {index: await label(index, raw) for index, raw in sorted(done.ok.items())}
            finally:
                for task in labelled.values():  # a failure or cancellation: no labelling left running
                    task.cancel()
            for index, future in ready.items():  # a done-callback may not have run yet; failed clips: None
                if not future.done():
                    future.set_result(ok.get(index))
            return MapResult(ok, done.failed)

        async def structure(index: int, conv: JSON) -> JSON:
            outputs = {i: await ready[i] for i in conv["clips"]}
            done = {i: out for i, out in outputs.items() if out is not None}
            return await self._structure(ctx, inp, index, results.conversation(ctx.job.files, inp, plan, conv, done))

        async def structure_all() -> MapResult[JSON]:
            return await ctx.map("structure", plan["conversations"], structure, concurrency=STRUCTURE_CONCURRENCY)

        return await _both(transcribe_all(), structure_all())

    async def _speech(self, ctx: Context, inp: AudioInput, workspace: Workspace, files: list[JSON]) -> JSON:
        """Speech spans of every track, then conversations (spans closer than the gap) and clips."""
        vad: Any = self.providers.vad  # hosted detectors take a request key; the protocol leaves it out
        tracks = channels.tracks(files, inp.channels)

        async def detect(index: int, track: JSON) -> list[list[float]]:
            path = await _track_path(workspace, track)
            key = f"{ctx.job.id}:speech[{index}]"
            spans = await ctx.call(vad.name, lambda: vad.detect(path, request_key=key))
            ctx.add_usage(vad.name, audio_seconds=float(files[track["file"]]["samples"]) / SAMPLE_RATE)
            return [[round(s.start, 3), round(s.end, 3)] for s in spans if s.end > s.start]

        speech = [await detect(i, t) for i, t in enumerate(tracks)]
        plan = plan_work(
            [[(s, e) for s, e in spans] for spans in speech],
            [captured_at(ctx.job.files[t["file"]]) for t in tracks],
            gap_seconds=inp.conversation_gap_seconds,
            max_clip_seconds=inp.max_clip_seconds,
            files=[t["file"] for t in tracks],
        )
        by_file = [_union(s for t, s in zip(tracks, speech, strict=True) if t["file"] == f) for f in range(len(files))]
        return {**plan, "speech": by_file, "tracks": tracks, "track_speech": speech}

    async def _speakers(self, ctx: Context, inp: AudioInput, workspace: Workspace, plan: JSON) -> JSON:
        """Who spoke when on every track (see ``speaker_turns``); no embedding when ``diarize`` is off. The
        mixed tracks' voices are embedded and clustered in the child process (``speaker_process``)."""
        tracks, speech = _tracks(plan)
        paths: dict[int, str] = {}
        for index, track in enumerate(tracks):
            if track["channel"] is None and inp.diarize:
                paths[index] = await _track_path(workspace, track)
        count = diarize.SpeakerCount(*inp.speaker_count())
        if not paths:  # separated channels only (or diarization off): no voice to embed
            return speaker_turns.job_turns(tracks, speech, {}, count)
        encoder = self.providers.voices
        return await speaker_process.run(speaker_turns.job_speakers, encoder, tracks, speech, paths, count)

    async def _transcribe(self, ctx: Context, inp: AudioInput, workspace: Workspace, plan: JSON, clip: JSON) -> JSON:
        """One clip: its speech spans joined and transcribed; the transcript as the transcriber gave it (times
        within the clip), for ``_label``."""
        index = int(clip["index"])
        stt = _transcriber(self.providers.stt, inp)
        number = int(clip["track"] if "track" in clip else clip["file"])
        track = _tracks(plan)[0][number]

        async def transcribe() -> Transcript:
            answer = await stt.transcribe(
                pcm,
                language=inp.language,
                speakers=inp.speakers,
                vocabulary=inp.vocabulary,
                request_key=f"{ctx.job.id}:transcribe[{index}]",
            )
            return _without_calls(answer)

        pcm = await workspace.clip(int(clip["file"]), clip["spans"], track["channel"])
        transcript = await ctx.call(stt.name, transcribe)
        return {
            "transcript": [_plain(segment) for segment in transcript.segments],
            "language": transcript.language,
            "provider": transcript.provider,
            "audio_seconds": round(len(pcm) / 2 / SAMPLE_RATE, 3),
        }

    async def _label(self, plan: JSON, clip: JSON, raw: JSON, speakers: asyncio.Future[JSON]) -> JSON:
        """A clip's transcript (``_transcribe``'s) put back on the file's timeline, its segments and words given
        the job's speakers once ``speakers`` is done. A checkpoint from before this split is labelled already."""
        if "segments" in raw:
            return raw
        number = int(clip["track"] if "track" in clip else clip["file"])
        track = _tracks(plan)[0][number]
        turns = (await asyncio.shield(speakers)).get("turns") or []  # empty when diarization is off
        timeline = SpeakerTimeline(turns[number]) if number < len(turns) and turns[number] else None
        fixed = None if track["channel"] is None else channels.channel_speaker(int(track["channel"]))
        segments = [_segment(s) for s in raw["transcript"]]
        labelled, words = attribute(segments, ClipMap(clip["spans"]), int(clip["file"]), Attribution(timeline, fixed))
        rest = {k: v for k, v in raw.items() if k != "transcript"}
        return {"segments": labelled, "words": words, **rest}

    async def _structure(self, ctx: Context, inp: AudioInput, index: int, conv: JSON) -> JSON:
        """The three questions about one conversation, asked at once; each is a step of its own."""
        if not conv["text"].strip():  # nothing to ask a model about
            return _unstructured(conv)
        analyzer = self.providers.analyzer
        text = ConversationText(
            conv["text"],
            results.parse_time(conv.get("started_at")),
            conv.get("language") or inp.language,
            [f.model_dump() for f in inp.folders],
            conv.get("utterances", []),
            conv.get("segments", []),
            ctx.job.created_at,
        )

        async def ask(question: str) -> JSON:
            key = f"structure[{index}].{question}"
            method = getattr(analyzer, question)
            answer: JSON = await ctx.step(key, lambda: method(ctx, text, key))
            return answer

        answers = await asyncio.gather(*(ask(q) for q in QUESTIONS), return_exceptions=True)
        for answer in answers:  # every question ran to its end (and was checkpointed) before we give up
            if isinstance(answer, BaseException):
                raise answer
        return dict(zip(QUESTIONS, answers, strict=True))


def _plain(segment: TranscriptSegment) -> JSON:
    """A segment as JSON (a transcriber's numbers may be numpy's)."""
    words = [
        {
            "word": w.word,
            "start": float(w.start),
            "end": float(w.end),
            "confidence": None if w.confidence is None else float(w.confidence),
            "speaker": w.speaker,
        }
        for w in segment.words
    ]
    return {"start": float(segment.start), "end": float(segment.end), "text": segment.text,
            "speaker": segment.speaker, "words": words}  # fmt: skip


def _segment(data: JSON) -> TranscriptSegment:
    """A ``TranscriptSegment`` from its checkpointed form (``dataclasses.asdict``)."""
    words = tuple(TranscriptWord(**word) for word in data.get("words") or ())
    return TranscriptSegment(**{**data, "words": words})


def _settle(future: asyncio.Future[JSON | None], task: asyncio.Future[JSON]) -> None:
    """Pass ``task``'s outcome on to ``future`` (unless it has one)."""
    if future.done():
        return
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        future.set_result(task.result())


async def _track_path(workspace: Workspace, track: JSON) -> str:
    if track["channel"] is None:
        return await workspace.ensure(int(track["file"]))
    return await workspace.ensure_channel(int(track["file"]), int(track["channel"]))


def _tracks(plan: JSON) -> tuple[list[JSON], list[list[list[float]]]]:
    """The plan's tracks and their speech (a plan checkpointed before tracks existed: one track per file)."""
    if "tracks" in plan:
        return plan["tracks"], plan["track_speech"]
    return [{"file": i, "channel": None} for i in range(len(plan["speech"]))], plan["speech"]


def _union(spans: Iterable[list[list[float]]]) -> list[list[float]]:
    """The spans of a file's tracks as one sorted list, overlapping spans joined."""
    out: list[list[float]] = []
    for start, end in sorted(s for track in spans for s in track):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def _transcriber(stt: SpeechToText, inp: AudioInput) -> SpeechToText:
    """The job's transcriber: with ``model``, the offline one's packaged model of that name."""
    if inp.model is not None and hasattr(stt, "with_model"):
        chosen: SpeechToText = stt.with_model(inp.model)
        return chosen
    return stt


async def _both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Run two coroutines at once; when one fails, cancel the other and raise the failure as it is (an
    ``asyncio.TaskGroup`` would wrap it in an ``ExceptionGroup``, which the worker does not expect)."""
    one, two = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        await asyncio.wait([one, two], return_when=asyncio.FIRST_EXCEPTION)
    finally:  # also when this task is cancelled (the job was canceled, the lease lost)
        for task in (one, two):
            if not task.done():
                task.cancel()
        await asyncio.gather(one, two, return_exceptions=True)
    for task in (one, two):
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
    return one.result(), two.result()


def _unstructured(conv: JSON) -> JSON:
    """The answers for a conversation without words: empty speech is chatter; failed clips are unknown."""
    if conv["failed_clips"]:
        reason = f"not transcribed: clip(s) {conv['failed_clips']} failed"
        discard: bool | None = None
    else:
        reason, discard = "no words were transcribed", True
    return {
        "structure": None,
        "folder": {"folder": None, "reason": reason},
        "discard": {"discard": discard, "reason": reason},
    }


__all__ = ["AudioProviders", "AudioRun", "default_providers"]
