"""The optional ``graphiti`` pipeline on an embedded Kuzu graph with the offline (spaCy) clients: a session's
episodes reach Graphiti through a real worker, a search finds the fact, and a resumed job adds no episode twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("graphiti_core", reason="graphiti-core is not installed (pip install 'ingestd[graphiti]')")
pytest.importorskip("kuzu", reason="kuzu is not installed (pip install 'ingestd[graphiti]')")

from workers import fast_settings, running_worker, wait_finished

from ingestd.models import NewJob
from ingestd.pipelines import build_pipelines
from ingestd.pipelines import graphiti as graphiti_pipeline
from ingestd.settings import Settings
from ingestd.store import open_store
from ingestd.store.protocol import JobStore

# graphiti-core warns on every KuzuDriver that its Kuzu backend will be removed (Kuzu is archived upstream).
pytestmark = pytest.mark.filterwarnings("ignore:.*[Kk]uzu.*:DeprecationWarning")

# Two episodes: the first holds four turns (eight messages), the fifth turn starts the second.
TURNS = [
    ("My friend Emma Schmidt works at Google in Zurich.", "Good to know."),
    ("I like hiking on weekends.", "Sounds fun."),
    ("The weather was nice today.", "Glad to hear it."),
    ("I had pasta for lunch.", "Tasty."),
    ("Tom Becker joined Stripe last month.", "Noted."),
]


def _session(user: str = "alice") -> dict[str, Any]:
    messages = []
    for i, (question, answer) in enumerate(TURNS):
        messages.append({"role": "user", "content": question, "timestamp": f"2026-03-01T10:{i:02d}:00+00:00"})
        messages.append({"role": "assistant", "content": answer, "timestamp": f"2026-03-01T10:{i:02d}:30+00:00"})
    return {"user_id": user, "session_id": "s1", "messages": messages, "reference_time": "2026-03-01T11:00:00+00:00"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[JobStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'ingestd.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def graph(tmp_path: Path) -> AsyncIterator[Any]:
    graphiti = await graphiti_pipeline.open_graphiti(Settings(graphiti_kuzu_path=str(tmp_path / "graph.kuzu")))
    try:
        yield graphiti
    finally:
        await graphiti.close()


async def _submit(store: JobStore) -> str:
    inp = _session()
    new = NewJob(pipeline="graphiti", input=inp, ordering_key="graphiti:alice", units=float(len(inp["messages"])))
    return (await store.submit(new)).job.id


async def _episodes(graphiti: Any) -> list[str]:
    rows, _, _ = await graphiti.driver.execute_query("MATCH (e:Episodic) RETURN e.name AS name ORDER BY name")
    return [row["name"] for row in rows]


async def test_a_session_reaches_the_graph_and_search_finds_the_fact(store: JobStore, graph: Any) -> None:
    settings = fast_settings(store.url)
    pipelines = {"graphiti": graphiti_pipeline.build(settings, graph)}
    job_id = await _submit(store)
    async with running_worker(store, settings, pipelines):
        job = await wait_finished(store, job_id, timeout=90)
    assert job.status == "succeeded", job.error
    assert job.result is not None and job.result["episodes"] == 2 and job.result["edges"] >= 1
    assert await _episodes(graph) == ["s1#0", "s1#1"]
    facts = [edge.fact for edge in await graph.search("Where does Emma Schmidt work?", group_ids=["alice"])]
    assert any("Emma Schmidt works at Google" in fact for fact in facts), facts
    assert await graph.search("Where does Emma Schmidt work?", group_ids=["bob"]) == []  # another user's graph


class _Gate:
    """Graphiti whose second ``add_episode`` call waits forever on the first worker (which is then stopped)."""

    def __init__(self, graphiti: Any) -> None:
        self.graphiti = graphiti
        self.calls: list[str] = []
        self.blocked = asyncio.Event()

    async def add_episode(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs["name"])
        if len(self.calls) == 2:
            self.blocked.set()
            await asyncio.Event().wait()  # the worker dies here, before Graphiti sees the episode
        return await self.graphiti.add_episode(**kwargs)


async def test_a_resumed_job_does_not_add_a_finished_episode_again(store: JobStore, graph: Any) -> None:
    settings = fast_settings(store.url)
    gate = _Gate(graph)
    pipelines = {"graphiti": graphiti_pipeline.build(settings, gate)}
    job_id = await _submit(store)
    async with running_worker(store, settings, pipelines, worker_id="doomed"):
        await asyncio.wait_for(gate.blocked.wait(), timeout=60)
    assert await _episodes(graph) == ["s1#0"]
    async with running_worker(store, settings, pipelines, worker_id="rescuer"):
        job = await wait_finished(store, job_id, timeout=90)
    assert job.status == "succeeded", job.error
    assert gate.calls == ["s1#0", "s1#1", "s1#1"]  # the checkpointed episode 0 was not sent again
    assert await _episodes(graph) == ["s1#0", "s1#1"]


def test_registered_only_when_a_graph_is_configured(tmp_path: Path) -> None:
    assert "graphiti" not in build_pipelines(Settings())
    assert "graphiti" in build_pipelines(Settings(graphiti_kuzu_path=str(tmp_path / "graph.kuzu")))
