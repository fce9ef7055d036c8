"""The ``graphiti`` pipeline: ingestd in front of an existing Graphiti graph (``pip install 'ingestd[graphiti]'``).

A chat session (the memory pipeline's input) is split into episodes and each episode is one checkpointed step
calling ``Graphiti.add_episode``, in order, so a resumed job never adds a finished episode again. One user's
sessions run one at a time (``ordering_key``), because Graphiti resolves an episode against the graph as the
previous ones left it.

Where the graph lives (settings): Neo4j (``INGESTD_GRAPHITI_NEO4J_URI``/``_USER``/``_PASSWORD``) with Graphiti's
default OpenAI clients (they read ``OPENAI_API_KEY``), or an embedded Kuzu database (``INGESTD_GRAPHITI_KUZU_PATH``)
with the offline clients below. The pipeline is registered only when graphiti-core is importable and one of the
two is configured.

The offline clients are not language models, and are named so: :class:`SpacyLLMClient` answers Graphiti's
structured prompts with spaCy NER and dependency-parse triples (the memory pipeline's offline extractor), exact
name matching for deduplication, and no summaries or dates; :class:`HashingEmbedderClient` is the memory
pipeline's feature-hashing embedder; :class:`OverlapReranker` ranks passages by shared words.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from datetime import datetime
from typing import Any, Protocol

from graphiti_core import Graphiti
from graphiti_core.cross_encoder.client import CrossEncoderClient
from graphiti_core.embedder.client import EmbedderClient
from graphiti_core.llm_client.client import LLMClient
from graphiti_core.llm_client.config import DEFAULT_MAX_TOKENS, LLMConfig, ModelSize
from graphiti_core.nodes import EpisodeType
from graphiti_core.prompts.models import Message as PromptMessage
from pydantic import BaseModel

from ingestd.models import JSON
from ingestd.pipeline import Context, Pipeline
from ingestd.pipelines.memory import session_pipeline
from ingestd.pipelines.memory.embedder import hash_embed
from ingestd.pipelines.memory.episodes import split_episodes
from ingestd.pipelines.memory.inputs import MemoryInput
from ingestd.pipelines.memory.names import fold
from ingestd.pipelines.memory.offline import extract_offline
from ingestd.settings import Settings

# Graphiti reports usage to PostHog unless told not to; ingestd makes no calls its operator did not configure.
os.environ.setdefault("GRAPHITI_TELEMETRY_ENABLED", "false")

_ROLE_LINE = re.compile(r"^(user|assistant|system): (.*)$")


def _section(text: str, *tags: str) -> str | None:
    for tag in tags:
        found = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.DOTALL)
        if found:
            return found.group(1)
    return None


def _json_section(text: str, tag: str) -> list[JSON]:
    raw = _section(text, tag)
    try:
        value = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _messages(body: str) -> list[JSON]:
    """The ``role: content`` lines of an episode's text (a line without a role continues the previous one)."""
    messages: list[JSON] = []
    for line in body.splitlines():
        match = _ROLE_LINE.match(line.strip())
        if match:
            messages.append({"role": match.group(1), "content": match.group(2), "timestamp": None})
        elif messages and line.strip():
            messages[-1]["content"] += "\n" + line
        elif line.strip():
            messages.append({"role": "user", "content": line, "timestamp": None})
    return messages


class SpacyLLMClient(LLMClient):
    """An offline stand-in for Graphiti's LLM: spaCy rules answering the structured prompts it understands.

    Answers ``ExtractedEntities`` (named entities), ``ExtractedEdges`` (subject-verb-object triples between them),
    ``NodeResolutions`` (same folded name = same entity), and empty ``SummarizedEntities``, ``EdgeTimestamps``
    and ``EdgeDuplicate``. Any other structured prompt raises, naming the model, so a gap is never silent.
    """

    def __init__(self) -> None:
        super().__init__(LLMConfig(model="spacy-ner+dependency-rules"), cache=False)

    async def _generate_response(
        self,
        messages: list[PromptMessage],
        response_model: type[BaseModel] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        model_size: ModelSize = ModelSize.medium,
        *,
        model: str | None = None,
    ) -> dict[str, Any]:
        prompt = "\n".join(m.content for m in messages if m.role == "user")
        name = response_model.__name__ if response_model is not None else ""
        if name in {"ExtractedEntities", "ExtractedEdges"}:
            body = _section(prompt, "CURRENT MESSAGE", "CURRENT_MESSAGE") or ""
            found = await asyncio.to_thread(extract_offline, {"messages": _messages(body)})
            return _entities(found) if name == "ExtractedEntities" else _edges(found, prompt)
        if name == "NodeResolutions":
            return _resolutions(prompt)
        empty: dict[str, JSON] = {
            "SummarizedEntities": {"summaries": []},
            "EdgeTimestamps": {"valid_at": None, "invalid_at": None},
            "EdgeDuplicate": {"duplicate_facts": [], "contradicted_facts": []},
        }
        if name in empty:
            return empty[name]
        raise NotImplementedError(f"SpacyLLMClient cannot answer {name or 'free text'}; use a real LLM client")


def _entities(found: JSON) -> JSON:
    names = [e["name"] for e in found["entities"]]
    return {"extracted_entities": [{"name": n, "entity_type_id": 0} for n in names]}


def _edges(found: JSON, prompt: str) -> JSON:
    known = {fold(str(e.get("name", ""))): str(e.get("name")) for e in _json_section(prompt, "ENTITIES")}
    edges = []
    for fact in found["facts"]:
        source, target = known.get(fold(fact["subject"])), known.get(fold(fact["object"]))
        if source and target and source != target:
            edges.append({"source_entity_name": source, "target_entity_name": target,
                          "relation_type": fact["predicate"].upper(), "fact": fact["sentence"]})  # fmt: skip
    return {"edges": edges}


def _resolutions(prompt: str) -> JSON:
    existing = {
        fold(str(e.get("name", ""))): e.get("candidate_id", -1) for e in _json_section(prompt, "EXISTING ENTITIES")
    }
    resolutions = []
    for i, entity in enumerate(_json_section(prompt, "ENTITIES")):
        name = str(entity.get("name", ""))
        resolutions.append(
            {"id": entity.get("id", i), "name": name, "duplicate_candidate_id": existing.get(fold(name), -1)}
        )
    return {"entity_resolutions": resolutions}


class HashingEmbedderClient(EmbedderClient):
    """Graphiti's embedder interface over the memory pipeline's feature-hashing vectors (no model, 256 floats)."""

    async def create(self, input_data: Any) -> list[float]:
        return hash_embed(input_data if isinstance(input_data, str) else " ".join(map(str, input_data)))

    async def create_batch(self, input_data_list: list[str]) -> list[list[float]]:
        return [hash_embed(text) for text in input_data_list]


class OverlapReranker(CrossEncoderClient):
    """Graphiti's reranker interface by word overlap with the query (share of the query's words in a passage)."""

    async def rank(self, query: str, passages: list[str]) -> list[tuple[str, float]]:
        words = set(fold(query).split())
        scored = [(p, len(words & set(fold(p).split())) / max(len(words), 1)) for p in passages]
        return sorted(scored, key=lambda item: -item[1])


class EpisodeSink(Protocol):
    """What the pipeline needs of Graphiti: ``add_episode`` (a :class:`Graphiti` is one)."""

    async def add_episode(
        self,
        name: str,
        episode_body: str,
        source_description: str,
        reference_time: datetime,
        source: EpisodeType = EpisodeType.message,
        group_id: str | None = None,
    ) -> Any: ...


def configured(settings: Settings) -> bool:
    """Whether settings name a graph for the ``graphiti`` pipeline (Neo4j URI or Kuzu path)."""
    return bool(settings.graphiti_neo4j_uri or settings.graphiti_kuzu_path)


async def open_graphiti(settings: Settings) -> Graphiti:
    """A :class:`Graphiti` on the configured graph: Neo4j with Graphiti's default (OpenAI) clients, or Kuzu with
    the offline clients. Indices are built once here."""
    if settings.graphiti_neo4j_uri:
        graphiti = Graphiti(settings.graphiti_neo4j_uri, settings.graphiti_neo4j_user, settings.graphiti_neo4j_password)
        await graphiti.build_indices_and_constraints()
        return graphiti
    from graphiti_core.driver.driver import GraphProvider
    from graphiti_core.driver.kuzu_driver import KuzuDriver
    from graphiti_core.graph_queries import get_fulltext_indices

    driver = KuzuDriver(db=str(settings.graphiti_kuzu_path))
    # graphiti-core 0.31.1 reads ``driver._database`` on every add_episode with a group_id, and KuzuDriver never
    # sets it (AttributeError). Kuzu has one database; group ids are node properties, so any name does.
    driver._database = "kuzu"
    graphiti = Graphiti(graph_driver=driver, llm_client=SpacyLLMClient(), embedder=HashingEmbedderClient(),
                        cross_encoder=OverlapReranker())  # fmt: skip
    # Graphiti builds no full-text indices on Kuzu by itself; its searches need them.
    for query in get_fulltext_indices(GraphProvider.KUZU):
        await driver.execute_query(query)
    return graphiti


class GraphitiRun:
    """``run(ctx, inp)``: one ``add_episode`` step per episode, on a Graphiti opened on first use and shared."""

    def __init__(self, settings: Settings, graphiti: EpisodeSink | None = None) -> None:
        self.settings = settings
        self._graphiti = graphiti
        self._opening = asyncio.Lock()

    async def graphiti(self) -> EpisodeSink:
        async with self._opening:
            if self._graphiti is None:
                opened: EpisodeSink = await open_graphiti(self.settings)
                self._graphiti = opened
            return self._graphiti

    async def run(self, ctx: Context, inp: MemoryInput) -> JSON:
        async def split() -> list[JSON]:
            return split_episodes(inp.session_id, inp.messages, inp.reference)

        episodes: list[JSON] = await ctx.step("episodes", split)
        added = []
        for done, episode in enumerate(episodes):
            await ctx.progress("add_episode", done, len(episodes))
            # In order, never in parallel: Graphiti resolves each episode against the ones before it.
            add = functools.partial(self._add, ctx, inp, episode)
            added.append(await ctx.step(f"add_episode[{episode['index']}]", add))
        return {
            "user_id": inp.user_id,
            "session_id": inp.session_id,
            "episodes": len(episodes),
            "episode_uuids": [a["episode"] for a in added],
            "nodes": sum(a["nodes"] for a in added),
            "edges": sum(a["edges"] for a in added),
        }

    async def _add(self, ctx: Context, inp: MemoryInput, episode: JSON) -> JSON:
        graphiti = await self.graphiti()

        async def add() -> Any:
            return await graphiti.add_episode(
                name=f"{inp.session_id}#{episode['index']}",
                episode_body=episode["text"],
                source=EpisodeType.message,
                source_description=f"ingestd job {ctx.job.id}",
                reference_time=datetime.fromisoformat(episode["started_at"]),
                group_id=inp.user_id,
            )

        result = await ctx.call("graphiti", add)
        return {"episode": result.episode.uuid, "nodes": len(result.nodes), "edges": len(result.edges)}


def build(settings: Settings, graphiti: EpisodeSink | None = None) -> Pipeline:
    """The ``graphiti`` pipeline on the configured graph (or on ``graphiti``, for embedding and tests)."""
    runner = GraphitiRun(settings, graphiti)
    description = "Chat sessions into an existing Graphiti graph, one add_episode per episode, in order."
    return session_pipeline("graphiti", runner.run, description)


def build_if_configured(settings: Settings) -> list[Pipeline]:
    """``[build(settings)]`` when a graph is configured, else nothing (the registry's entry point)."""
    return [build(settings)] if configured(settings) else []


__all__ = [
    "GraphitiRun",
    "HashingEmbedderClient",
    "OverlapReranker",
    "SpacyLLMClient",
    "build",
    "build_if_configured",
    "configured",
    "open_graphiti",
]
