"""The stages of the memory pipeline, written against ``ingestd.pipeline.Context``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ingestd.models import JSON
from ingestd.pipeline import Context
from ingestd.pipelines.memory import names
from ingestd.pipelines.memory.codec import (
    changes_from_json,
    changes_to_json,
    pack_vector,
    parse_time,
    unpack_vector,
)
from ingestd.pipelines.memory.embedder import HashingEmbedder
from ingestd.pipelines.memory.episodes import EpisodeLimits, split_episodes
from ingestd.pipelines.memory.extract import Extractor, LLMExtractor
from ingestd.pipelines.memory.graph import GraphChanges, GraphStore, NewEpisode, NewFact, Scope, open_graph_store
from ingestd.pipelines.memory.inputs import MemoryInput
from ingestd.pipelines.memory.items import dated_messages, fact_day, new_message
from ingestd.pipelines.memory.offline import SpacyExtractor
from ingestd.pipelines.memory.resolve import EntityResolver, FactResolver, fact_time
from ingestd.providers.base import Embedder, Embeddings
from ingestd.settings import Settings

# Episodes extracted at once per job: high, because the real bound is the provider's, set fleet-wide with
# INGESTD_PROVIDER_LIMITS (a job's episodes then wait for a slot instead of for each other).
EXTRACT_CONCURRENCY = 64

NAME_VECTORS = 10_000  # entity names whose vectors a process keeps (about 2 KB each)

ProviderCall = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True)
class MemoryProviders:
    """Who extracts and who embeds; ``closing`` is what to close with them (the registry's shared HTTP client)."""

    extractor: Extractor
    embedder: Embedder
    closing: Any = None  # an object with ``async aclose()``


def default_providers(settings: Settings) -> MemoryProviders:
    """Extraction and embeddings as configured. ``llm_provider=offline``: spaCy rules; ``openai``: the registry's
    chat model. ``embedding_provider=offline``: the registry's ``offline_embedder(memory_embedding)`` (``onnx`` by
    default, hashing when its model is missing); ``openai``: the registry's embedder."""
    extractor: Extractor = SpacyExtractor()
    embedder: Embedder = HashingEmbedder()
    providers = None
    hosted = settings.llm_provider != "offline" or settings.embedding_provider != "offline"
    if hosted:
        from ingestd.providers.registry import build_providers

        providers = build_providers(settings)
        if providers.chat is not None:
            extractor = LLMExtractor(providers.chat)
        if settings.embedding_provider != "offline":
            embedder = providers.embedder
    if settings.embedding_provider == "offline":
        from ingestd.providers.registry import offline_embedder

        embedder = offline_embedder(settings.memory_embedding, HashingEmbedder)
    return MemoryProviders(extractor, embedder, closing=providers)


def embedding_model(embedder: Embedder) -> str:
    return str(getattr(embedder, "model", embedder.name))


class MemoryRun:
    """``run(ctx, inp)`` of the pipeline; providers are built on first use (spaCy loads lazily)."""

    def __init__(self, settings: Settings, providers: MemoryProviders | None = None) -> None:
        self.settings = settings
        self._providers = providers
        self._graph: GraphStore | None = None
        self._opening = asyncio.Lock()
        self._names = _NameVectors()

    @property
    def providers(self) -> MemoryProviders:
        if self._providers is None:
            self._providers = default_providers(self.settings)
        return self._providers

    async def aclose(self) -> None:
        """Close the providers' HTTP clients, if any were built (for embedders of ingestd and for tests)."""
        if self._graph is not None:
            await self._graph.close()
            self._graph = None
        if self._providers is None:
            return
        chat = getattr(self._providers.extractor, "chat", None)
        for provider in (chat, self._providers.embedder, self._providers.closing):
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    async def run(self, ctx: Context, inp: MemoryInput) -> JSON:
        async def episodes() -> list[JSON]:
            return split_episodes(inp.session_id, inp.messages, inp.reference, EpisodeLimits(), inp.message_ids())

        parts: list[JSON] = await ctx.step("episodes", episodes)
        await ctx.progress("extract", 0, len(parts))
        done = await ctx.map("extract", parts, lambda i, ep: self._extract(ctx, i, ep), concurrency=EXTRACT_CONCURRENCY)
        order = sorted(done.ok)
        # Embedding is its own checkpointed stage: a worker lost while embedding never repeats an extraction.
        vectors = await ctx.map(
            "embed",
            order,
            lambda _, i: self.embed_found(ctx.call, f"{ctx.job.id}:embed[{i}]", done.ok[i]),
            concurrency=EXTRACT_CONCURRENCY,
        )
        extracted = [(parts[i], {**done.ok[i], **vectors.ok.get(n, {})}) for n, i in enumerate(order)]
        scope = Scope(ctx.job.tenant, inp.user_id)

        async def resolve() -> JSON:
            return changes_to_json(await self.resolve_changes(ctx.job.id, scope, extracted))

        changes = changes_from_json(await ctx.step("resolve", resolve))

        async def apply() -> JSON:
            outcome = await (await self.graph()).apply(scope, changes)
            return {"applied": outcome.applied, **outcome.stats}

        applied = await ctx.step("apply", apply)
        return _result(inp, parts, extracted, applied, len(done.failed) + len(vectors.failed))

    async def graph(self) -> GraphStore:
        """The memory graph, opened (and migrated) once per process, on first use."""
        async with self._opening:
            if self._graph is None:
                self._graph = await open_graph_store(self.settings.database_url)
            return self._graph

    async def _extract(self, ctx: Context, index: int, episode: JSON) -> JSON:
        return await self.extract_episode(ctx.call, f"{ctx.job.id}:extract[{index}]", episode)

    async def extract_episode(self, call: ProviderCall, key: str, episode: JSON) -> JSON:
        """Entities and facts of one episode and its messages with their dates resolved; provider calls go
        through ``call`` (``Context.call`` in a job: limits and usage), under request keys derived from ``key``."""
        extractor = self.providers.extractor

        async def extract() -> JSON:
            answer = await extractor.extract(episode, request_key=key)
            return {**answer, "usage": _without_calls(answer.get("usage") or {})}

        found: JSON = await call(extractor.name, extract)
        found["messages"] = dated_messages(episode)
        return found

    async def embed_found(self, call: ProviderCall, key: str, found: JSON) -> JSON:
        """The embeddings of an extraction's entity names, facts and messages (``entity_vectors``,
        ``fact_vectors``, ``messages`` with a ``vector`` each, and ``embedding_model``). A fact read from one
        message shares that message's vector (it is what the message says): one embedding fewer per fact. A name
        this process embedded before reuses its vector (a chat names the same people in most episodes)."""
        entities, facts, messages = found["entities"], found["facts"], found["messages"]
        position = {m["id"]: i for i, m in enumerate(messages)}
        source = [_single_source(f, position) for f in facts]
        own = [i for i, s in enumerate(source) if s is None]
        embedder = self.providers.embedder
        model = embedding_model(embedder)
        known = [self._names.get((model, e["name"])) for e in entities]
        names = list(dict.fromkeys(e["name"] for e, v in zip(entities, known, strict=True) if v is None))
        texts = names + [f"{m['speaker']}: {m['content']}" for m in messages]
        texts += [_fact_text(facts[i]) for i in own]

        async def embed() -> Embeddings:
            answer = await embedder.embed(texts, request_key=key)
            return dataclasses.replace(answer, usage=_without_calls(answer.usage))

        vectors = await call(embedder.name, embed) if texts else None
        packed = [pack_vector(v) for v in vectors.vectors] if vectors else []
        n, k = len(names), len(names) + len(messages)
        new_names = dict(zip(names, packed[:n], strict=False))
        self._names.remember(model, new_names)
        by_message, by_fact = packed[n:k], dict(zip(own, packed[k:], strict=False))
        fact_vectors = [by_fact.get(i) if s is None else _at(by_message, s) for i, s in enumerate(source)]
        return {
            "entity_vectors": [v or new_names.get(e["name"]) for e, v in zip(entities, known, strict=True)],
            "fact_vectors": fact_vectors,
            "messages": [{**m, "vector": v} for m, v in zip(messages, by_message, strict=False)] or messages,
            "embedding_model": vectors.model if vectors else model,
        }

    async def resolve_changes(self, job_id: str, scope: Scope, extracted: list[tuple[JSON, JSON]]) -> GraphChanges:
        """What ``extracted`` (episode, extraction with vectors) changes in the user's graph as it is now."""
        graph = await self.graph()
        resolver = EntityResolver(await graph.known_entities(scope), id_prefix=f"{job_id}-e")
        _resolve_mentions(resolver, extracted)
        # Subjects are resolved with the facts (a subject need not be a recognised entity mention: "Anna
        # lives in Zurich"), so the current facts to compare with are read for every subject, after.
        new_facts = [f for episode, found in extracted for f in _new_facts(resolver, job_id, episode, found)]
        created = {e.id for e in resolver.new_entities}
        current = await graph.current_facts(scope, sorted({f.subject_id for f in new_facts} - created))
        facts = FactResolver(current, id_prefix=f"{job_id}-f")
        for fact in new_facts:
            facts.add(fact)
        stats = {
            "episodes": len(extracted),
            "entities_added": len(resolver.new_entities),
            "entity_mentions_merged": resolver.merged,
            "facts_added": len(facts.facts),
            "facts_invalidated": len(facts.invalidations) + sum(1 for f in facts.facts if f.invalid_at is not None),
            "duplicate_facts_skipped": facts.duplicates,
        }
        return GraphChanges(
            job_id=job_id,
            embedding_model=extracted[0][1]["embedding_model"] if extracted else "",
            episodes=[_episode(job_id, ep) for ep, _ in extracted],
            messages=[new_message(episode["session_id"], m) for episode, found in extracted for m in found["messages"]],
            entities=resolver.new_entities,
            aliases=resolver.new_aliases,
            facts=facts.facts,
            invalidations=facts.invalidations,
            stats=stats,
        )


class _NameVectors:
    """The packed vectors of the entity names this process embedded last, by (model, name)."""

    def __init__(self, size: int = NAME_VECTORS) -> None:
        self._vectors: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._size = size

    def get(self, key: tuple[str, str]) -> str | None:
        return self._vectors.get(key)

    def remember(self, model: str, vectors: dict[str, str | None]) -> None:
        for name, vector in vectors.items():
            if vector is not None:
                self._vectors[(model, name)] = vector
                self._vectors.move_to_end((model, name))
        while len(self._vectors) > self._size:
            self._vectors.popitem(last=False)


def _without_calls(usage: JSON) -> JSON:
    # Context.call counts the call itself; a ``calls`` counter in the answer would be counted twice.
    return {k: v for k, v in usage.items() if k != "calls"}


def _single_source(fact: JSON, position: dict[str, int]) -> int | None:
    ids = fact.get("message_ids") or []
    return position.get(ids[0]) if len(ids) == 1 else None


def _at(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def _fact_text(fact: JSON) -> str:
    return fact["sentence"] or f"{fact['subject']} {fact['predicate'].replace('_', ' ')} {fact['object']}"


def _resolve_mentions(resolver: EntityResolver, extracted: list[tuple[JSON, JSON]]) -> dict[str, str]:
    """Resolve every entity mention, full names first so that "Ms. Schmidt" finds "Emma Schmidt"."""
    mentions: list[tuple[JSON, list[float] | None]] = []
    for _, found in extracted:
        vectors = [unpack_vector(v) for v in found.get("entity_vectors") or []]
        mentions += [(e, vectors[i] if i < len(vectors) else None) for i, e in enumerate(found["entities"])]
    mentions.sort(key=lambda m: -len(names.normalise_name(m[0]["name"]).split()))
    resolved: dict[str, str] = {}
    for entity, vector in mentions:
        entity_id = resolver.resolve(entity["name"], entity["type"], entity.get("summary", ""), vector)
        if entity_id is not None:
            resolved[entity["name"]] = entity_id
    return resolved


def _new_facts(resolver: EntityResolver, job_id: str, episode: JSON, found: JSON) -> list[NewFact]:
    start = parse_time(episode["started_at"])
    vectors = [unpack_vector(v) for v in found.get("fact_vectors") or []]
    out: list[NewFact] = []
    for i, fact in enumerate(found["facts"]):
        subject_id = resolver.lookup(fact["subject"]) or resolver.resolve(fact["subject"], names.THING, "", None)
        if subject_id is None:
            continue
        out.append(
            NewFact(
                id="",  # numbered by FactResolver
                subject_id=subject_id,
                predicate=names.normalise_predicate(fact["predicate"]),
                object_id=resolver.lookup(fact["object"]),
                object=fact["object"],
                sentence=fact["sentence"] or _fact_text(fact),
                valid_at=fact_day(fact["sentence"], fact_time(fact.get("valid_at"), start)),
                invalid_at=fact_time(fact.get("invalid_at"), None),
                episode_id=_episode_id(job_id, episode),
                embedding=vectors[i] if i < len(vectors) else None,
                message_ids=list(fact.get("message_ids") or [m["id"] for m in episode["messages"]]),
            )
        )
    return out


def _episode_id(job_id: str, episode: JSON) -> str:
    return f"{job_id}-ep{episode['index']}"


def _episode(job_id: str, episode: JSON) -> NewEpisode:
    return NewEpisode(
        id=_episode_id(job_id, episode),
        session_id=episode["session_id"],
        index=episode["index"],
        content=episode["text"],
        started_at=parse_time(episode["started_at"]),
        reference_time=parse_time(episode["reference_time"]),
    )


def _result(
    inp: MemoryInput, parts: list[JSON], extracted: list[tuple[JSON, JSON]], applied: JSON, failed: int
) -> JSON:
    methods: dict[str, Any] = {}
    for _, found in extracted:
        methods.setdefault(found.get("method", "llm"), {"provider": found.get("provider"), "model": found.get("model")})
    return {
        "user_id": inp.user_id,
        "session_id": inp.session_id,
        "messages": len(inp.messages),
        "episodes": len(parts),
        "episodes_failed": failed,
        "extraction": methods,
        "embedding_model": extracted[0][1].get("embedding_model") if extracted else None,
        "graph": applied,
    }
