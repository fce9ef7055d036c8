"""The ``audio`` pipeline: recordings → speech → transcripts → structured conversations.

Stages (each checkpointed): ``decode`` (PyAV, streaming, to 16 kHz mono PCM; an unusable file fails the job
here), ``speech`` (voice activity, then conversations split at silences longer than the gap, and clips),
``transcribe[i]`` per clip in parallel, ``structure[i]`` per conversation in parallel (structure, folder and
discard questions at once). Clips that fail for good leave the job ``partial``, listing them; the rest is kept.
See docs/pipelines/audio.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingestd.pipeline import DeferredRun, Pipeline
from ingestd.pipelines.audio.inputs import AudioInput, Folder

if TYPE_CHECKING:
    from ingestd.pipelines.audio.run import AudioProviders
    from ingestd.settings import Settings


def build(settings: Settings, providers: AudioProviders | None = None) -> Pipeline:
    """The ``audio`` pipeline on the providers ``settings`` choose (or on ``providers``); its stages (``run``,
    numpy) are imported when its first job runs."""
    return Pipeline(
        name="audio",
        input_model=AudioInput,
        run=DeferredRun("ingestd.pipelines.audio.run:AudioRun", settings, providers),
        description="Recordings into transcribed, structured conversations (title, overview, action items, folder).",
        unit="input_megabytes",  # the API sizes a job by its uploads (duration is known only after decode)
        accepts_files=True,
        requires_files=True,
    )


def __getattr__(name: str) -> Any:
    """``AudioProviders`` and ``default_providers`` live in ``run``, imported when one of them is asked for."""
    if name in ("AudioProviders", "default_providers"):
        from ingestd.pipelines.audio import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AudioInput", "AudioProviders", "Folder", "build", "default_providers"]
