"""The ``audio`` pipeline: recordings → speech → transcripts → structured conversations.

Stages (each checkpointed): ``decode`` (PyAV, streaming, to 16 kHz mono PCM; an unusable file fails the job
here), ``speech`` (voice activity, then conversations split at silences longer than the gap, and clips),
``transcribe[i]`` per clip in parallel, ``structure[i]`` per conversation in parallel (structure, folder and
discard questions at once). Clips that fail for good leave the job ``partial``, listing them; the rest is kept.
See docs/pipelines/audio.md.
"""

from __future__ import annotations

from ingestd.pipeline import Pipeline
from ingestd.pipelines.audio.inputs import AudioInput, Folder
from ingestd.pipelines.audio.run import AudioProviders, AudioRun, default_providers
from ingestd.settings import Settings


def build(settings: Settings, providers: AudioProviders | None = None) -> Pipeline:
    """The ``audio`` pipeline on the providers ``settings`` choose (or on ``providers``)."""
    audio = AudioRun(settings, providers)
    return Pipeline(
        name="audio",
        input_model=AudioInput,
        run=audio.run,
        description="Recordings into transcribed, structured conversations (title, overview, action items, folder).",
        unit="input_megabytes",  # the API sizes a job by its uploads (duration is known only after decode)
        accepts_files=True,
        requires_files=True,
    )


__all__ = ["AudioInput", "AudioProviders", "Folder", "build", "default_providers"]
