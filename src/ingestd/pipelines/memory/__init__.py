"""The ``memory`` pipeline: a chat session → episodes → entities and facts → resolved → a temporal graph.

Stages (each checkpointed): ``episodes``; ``extract[i]`` per episode in parallel (one LLM or spaCy call, one
embeddings call); ``resolve`` against the user's graph; ``apply`` in one transaction, at most once per job.
One user's sessions run one at a time in submission order (``ordering_key = user_id``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ingestd.models import JSON
from ingestd.pipeline import Context, DeferredRun, Pipeline
from ingestd.pipelines.memory.inputs import MemoryInput

if TYPE_CHECKING:
    from ingestd.pipelines.memory.run import MemoryProviders
    from ingestd.settings import Settings


def build(settings: Settings, providers: MemoryProviders | None = None) -> Pipeline:
    """The ``memory`` pipeline writing to the graph in ``settings.database_url``; its stages (``run``, numpy)
    are imported when its first job runs (or ``run.__self__`` is asked for)."""
    run = DeferredRun("ingestd.pipelines.memory.run:MemoryRun", settings, providers)
    description = "Chat sessions into a temporal knowledge graph (entities, facts with validity) per user."
    return session_pipeline("memory", run, description)


def session_pipeline(name: str, run: Callable[[Context, MemoryInput], Awaitable[JSON]], description: str) -> Pipeline:
    """A pipeline over chat sessions (``MemoryInput``; ``memory`` and ``graphiti``): sized in messages, and one
    user's sessions run one at a time in submission order (the ordering key ``<name>:<user_id>``)."""
    return Pipeline(
        name=name,
        input_model=MemoryInput,
        run=run,
        description=description,
        unit="messages",
        units=lambda inp: float(len(inp.messages)),
        ordering_key=lambda inp: f"{name}:{inp.user_id}",
    )


def __getattr__(name: str) -> Any:
    """``MemoryProviders`` lives in ``run``, imported when it is asked for."""
    if name == "MemoryProviders":
        from ingestd.pipelines.memory import run

        return run.MemoryProviders
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MemoryInput", "MemoryProviders", "build", "session_pipeline"]
