"""The ``memory`` pipeline: a chat session → episodes → entities and facts → resolved → a temporal graph.

Stages (each checkpointed): ``episodes``; ``extract[i]`` per episode in parallel (one LLM or spaCy call, one
embeddings call); ``resolve`` against the user's graph; ``apply`` in one transaction, at most once per job.
One user's sessions run one at a time in submission order (``ordering_key = user_id``).
"""

from __future__ import annotations

from ingestd.pipeline import Pipeline
from ingestd.pipelines.memory.inputs import MemoryInput
from ingestd.pipelines.memory.run import MemoryProviders, MemoryRun
from ingestd.settings import Settings


def build(settings: Settings, providers: MemoryProviders | None = None) -> Pipeline:
    """The ``memory`` pipeline writing to the graph in ``settings.database_url``."""
    memory = MemoryRun(settings, providers)
    return Pipeline(
        name="memory",
        input_model=MemoryInput,
        run=memory.run,
        description="Chat sessions into a temporal knowledge graph (entities, facts with validity) per user.",
        unit="messages",
        units=lambda inp: float(len(inp.messages)),
        ordering_key=lambda inp: f"memory:{inp.user_id}",
    )


__all__ = ["MemoryInput", "MemoryProviders", "build"]
