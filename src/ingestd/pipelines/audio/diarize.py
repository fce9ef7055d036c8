"""Who spoke when: speaker turns from voice embeddings of sliding windows over speech, clustered for the whole job.

Every window of every file of a job is clustered together (spectral clustering with the number of speakers
from the normalized maximum eigengap, NME-SC; within the job's ``min_speakers``..``max_speakers``, and
``speakers`` fixes it), so ``speaker_1`` is one voice across all clips and all files of the job. It replaced
agglomerative clustering with a silhouette-chosen count, which split a monologue in two and a sparse real call
into many; both were measured in bench/diarization.py. Clusters of a few windows (a cough, a laugh, a
window that straddles two voices) are folded into the nearest large one. Labels are numbered in order of first
appearance. When there are two speakers or more, changes of speaker are then re-placed with shorter windows
scored against each speaker's centroid (``resegment``); without them (``turns``) a moment of speech takes the
label of the window whose centre is nearest.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_AUTO_SPEAKERS = 10  # the most speakers found without a hint
MAX_CLUSTERED = 600  # windows (~5 min of speech) clustered at once; more are assigned to the clusters of a sample
MIN_CLUSTER_SHARE = 0.05  # a cluster with fewer of the windows is folded into a larger one (without a hint)
MIN_SPEAKER_WINDOWS = 5  # nor is a cluster of fewer windows (~3.6 s of speech) a speaker of its own
PRUNE_SHARES = (0.15, 0.4)  # the range of neighbours kept per window (share of windows) that NME-SC searches
PRUNE_FLOOR = 16  # ...but it starts at no more neighbours than this (~8 s of one voice): see _spectral
PRUNE_STEPS = 16  # neighbour counts tried in that range, at most
RESEGMENT_STEP = 0.05  # seconds: the resolution at which short windows re-place speaker changes
Turn = tuple[float, float, str]


@dataclass(frozen=True)
class SpeakerCount:
    """How many speakers the clustering may find (``low == high``: exactly that many)."""

    low: int = 1
    high: int = 20


def cluster(vectors: np.ndarray, count: SpeakerCount) -> np.ndarray:
    """A cluster number (0, 1, ...) per row of ``vectors`` (unit-length embeddings)."""
    n = len(vectors)
    if n < 2 or count.high == 1:
        return np.zeros(n, dtype=int)
    if n > MAX_CLUSTERED:  # the eigen-decompositions grow as n³: cluster an even sample, the rest join the nearest
        sample = np.linspace(0, n - 1, MAX_CLUSTERED).astype(int)
        keys, centroids = _centroids(vectors[sample], cluster(vectors[sample], count))
        return _renumber(np.array(keys)[np.argmax(vectors @ centroids.T, axis=1)])
    from threadpoolctl import threadpool_limits

    # numpy's BLAS only: an OpenMP limit would reach CTranslate2's pool (Whisper in another thread, other words)
    with threadpool_limits(1, user_api="blas"):  # small matrices: one thread is as fast, and leaves a core to Whisper
        labels = _spectral(vectors.astype(np.float64), count)
    if count.low <= 1:  # a few stray windows (a cough, two voices at once) are not a speaker of their own
        labels = _fold_small(vectors, labels)
    return _renumber(labels)


def _spectral(vectors: np.ndarray, count: SpeakerCount) -> np.ndarray:
    """NME-SC (Park et al., 2019, "Auto-tuning spectral clustering for speaker diarization using normalized
    maximum eigengap"): the cosine-similarity graph keeps each window's ``p`` nearest neighbours; the Laplacian's
    largest eigengap among the first eigenvalues gives the number of speakers; ``p`` is the one whose gap is
    largest relative to ``p`` (a sparse graph that still separates the voices). Graphs that fall apart into
    pieces are skipped (with few windows they would count every piece as a speaker). Then k-means on the
    first ``k`` eigenvectors."""
    from scipy.cluster.vq import kmeans2
    from scipy.sparse.csgraph import connected_components

    n = len(vectors)
    similarity = vectors @ vectors.T
    order = np.argsort(-similarity, axis=1)
    low, high = max(1, count.low), max(1, min(count.high, MAX_AUTO_SPEAKERS, n - 1))
    # The search starts at a share of the windows, but at no more than PRUNE_FLOOR: with many voices a fixed share
    # is more windows than one speaker has (15 % of them past ~6 speakers), every window then links to other
    # voices, and a 10-voice job was found to hold 2 (bench/diarization.py --many-voices).
    first = max(2, min(PRUNE_FLOOR, int(PRUNE_SHARES[0] * n)))
    last = max(first + 1, int(PRUNE_SHARES[1] * n))
    tried = sorted({int(p) for p in np.linspace(first, last, PRUNE_STEPS).round()})
    tried += list(range(last + 1, n))  # only when no graph in the range holds together
    best: tuple[float, int, int] | None = None
    for p in tried:
        if best is not None and p > last:
            break
        graph = _pruned(order, p)
        if connected_components(graph > 0, directed=False)[0] > 1:
            continue
        eigenvalues = np.linalg.eigvalsh(_laplacian(graph))
        gaps = np.diff(eigenvalues[: high + 1])
        k = low + int(np.argmax(gaps[low - 1 :])) if low <= len(gaps) else low
        ratio = p / (float(gaps[k - 1] if k - 1 < len(gaps) else 0.0) / (eigenvalues[-1] + 1e-10) + 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, p, k)
    if best is None:
        return np.zeros(n, dtype=int) if low <= 1 else _split(vectors, min(low, n))
    _, p, k = best
    if k <= 1:
        return np.zeros(n, dtype=int)
    _, eigenvectors = np.linalg.eigh(_laplacian(_pruned(order, p)))
    spectral = eigenvectors[:, :k]
    spectral /= np.linalg.norm(spectral, axis=1, keepdims=True).clip(1e-9)
    _, labels = kmeans2(spectral, k, minit="++", seed=0)
    return np.asarray(labels)


def _pruned(order: np.ndarray, p: int) -> np.ndarray:
    """The symmetric graph in which each window links to its ``p`` most similar windows (itself included)."""
    n = len(order)
    graph = np.zeros((n, n))
    graph[np.arange(n)[:, None], order[:, :p]] = 1.0
    return (graph + graph.T) / 2


def _laplacian(graph: np.ndarray) -> np.ndarray:
    return np.asarray(np.diag(graph.sum(axis=1)) - graph)


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    keys = sorted(set(labels.tolist()))
    means = np.stack([vectors[labels == k].mean(axis=0) for k in keys])
    return keys, means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-9)


def _fold_small(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fold clusters with too few windows into the nearest larger cluster (by centroid similarity)."""
    sizes = np.bincount(labels)
    small = max(MIN_SPEAKER_WINDOWS - 1, int(MIN_CLUSTER_SHARE * len(labels)))
    big = [int(c) for c in np.flatnonzero(sizes > small)] or [int(np.argmax(sizes))]
    keys, centroids = _centroids(vectors, np.where(np.isin(labels, big), labels, -1))
    keep = [i for i, k in enumerate(keys) if k >= 0]
    out = labels.copy()
    for i in np.flatnonzero(~np.isin(labels, big)):
        out[i] = keys[keep[int(np.argmax(centroids[keep] @ vectors[i]))]]
    return out


def _split(vectors: np.ndarray, k: int) -> np.ndarray:
    """Exactly ``k`` clusters when the hint asks for more than the distances show (k-means++, fixed seed)."""
    from scipy.cluster.vq import kmeans2

    _, labels = kmeans2(vectors.astype(np.float64), k, minit="++", seed=0)
    return np.asarray(labels)


def _renumber(labels: np.ndarray) -> np.ndarray:
    order = {k: i for i, k in enumerate(sorted(set(labels.tolist())))}
    return np.array([order[k] for k in labels.tolist()], dtype=int)


def names(labels_in_order: Sequence[int]) -> dict[int, str]:
    """``speaker_1``, ``speaker_2``... by first appearance in ``labels_in_order``."""
    out: dict[int, str] = {}
    for label in labels_in_order:
        if label not in out:
            out[label] = f"speaker_{len(out) + 1}"
    return out


def turns(speech: Sequence[Sequence[float]], windows: Sequence[Sequence[float]], labels: Sequence[str]) -> list[Turn]:
    """Speaker turns over the ``speech`` spans of one track: each moment takes the label of the nearest window
    centre; consecutive pieces of one speaker within a span are one turn."""
    if not windows:
        return []
    centres = [(float(s) + float(e)) / 2 for s, e in windows]
    out: list[Turn] = []
    for start, end in speech:
        pieces = _pieces(float(start), float(end), centres, labels)
        for s, e, label in pieces:
            if out and out[-1][2] == label and out[-1][1] == s:
                out[-1] = (out[-1][0], e, label)
            else:
                out.append((s, e, label))
    return out


def _pieces(start: float, end: float, centres: list[float], labels: Sequence[str]) -> list[Turn]:
    """[start, end) cut at the midpoints between neighbouring window centres of different labels."""
    lo = max(0, bisect.bisect_left(centres, start) - 1)
    hi = min(len(centres), bisect.bisect_right(centres, end) + 1)
    pieces: list[Turn] = []
    at = start
    for i in range(lo, hi):
        cut = (centres[i] + centres[i + 1]) / 2 if i + 1 < hi else end
        if cut <= at:
            continue
        cut = min(cut, end)
        if pieces and pieces[-1][2] == labels[i]:
            pieces[-1] = (pieces[-1][0], cut, labels[i])
        else:
            pieces.append((at, cut, labels[i]))
        at = cut
        if at >= end:
            break
    return [(round(s, 3), round(e, 3), label) for s, e, label in pieces]


def centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The cluster numbers and each cluster's mean vector (unit length), in the same order."""
    return _centroids(vectors, labels)


def resegment(
    speech: Sequence[Sequence[float]], windows: Sequence[Sequence[float]], scores: np.ndarray, labels: Sequence[str]
) -> list[Turn]:
    """Turns over the ``speech`` spans of one track from short windows scored against each speaker's centroid
    (``scores[i, j]``: window ``i``'s similarity to ``labels[j]``): every ``RESEGMENT_STEP`` of speech takes the
    speaker whose centroid the windows covering it resemble most, each window weighted by a Hann curve over its
    length (its middle counts most). A moment no window covers takes the nearest window's best speaker.

    The clustering needs long windows (1.6 s) to find the voices, but a turn shorter than a window ("hello", "I
    see") then never gets a window of its own; short windows (0.8 s every 0.4 s) compared with the long windows'
    centroids place it (bench/diarization.py: 0.90 -> 0.97 of the real call's words right)."""
    if not len(windows):
        return []
    spans = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    centres = spans.mean(axis=1)
    out: list[Turn] = []
    for start, end in speech:
        start, end = float(start), float(end)
        count = max(1, int(np.ceil((end - start) / RESEGMENT_STEP - 1e-9)))
        for first in range(0, count, 400):  # blocks of 20 s bound the (windows x moments) weight matrix
            times = start + RESEGMENT_STEP * (np.arange(first, min(count, first + 400)) + 0.5)
            near = np.flatnonzero((spans[:, 0] < times[-1]) & (spans[:, 1] > times[0]))
            x = (times[None, :] - spans[near, :1]) / np.maximum(spans[near, 1:] - spans[near, :1], 1e-9)
            weight = np.where((x >= 0) & (x < 1), np.sin(np.pi * x) ** 2, 0.0)
            best = np.argmax(weight.T @ scores[near], axis=1).tolist()
            for i in np.flatnonzero(weight.sum(axis=0) <= 0).tolist():
                best[i] = int(np.argmax(scores[int(np.argmin(np.abs(centres - times[i])))]))
            for i, key in enumerate(best):
                s = round(max(start, float(times[i]) - RESEGMENT_STEP / 2), 3)
                e = round(min(end, float(times[i]) + RESEGMENT_STEP / 2), 3)
                if out and out[-1][2] == labels[key] and out[-1][1] == s:
                    out[-1] = (out[-1][0], e, labels[key])
                else:
                    out.append((s, e, labels[key]))
    return out


class SpeakerTimeline:
    """The turns of one track, for asking who spoke at a moment or over a stretch."""

    def __init__(self, track_turns: Sequence[Sequence[Any]]) -> None:
        self.turns = [(float(s), float(e), str(label)) for s, e, label in track_turns]
        self.starts = [t[0] for t in self.turns]

    def at(self, t: float) -> str | None:
        """The speaker at ``t``, or of the nearest turn when ``t`` falls between turns."""
        if not self.turns:
            return None
        i = bisect.bisect_right(self.starts, t) - 1
        candidates = [self.turns[j] for j in (i, i + 1) if 0 <= j < len(self.turns)]
        return min(candidates, key=lambda turn: _distance(turn, t))[2]

    def most(self, start: float, end: float) -> str | None:
        """The speaker who covers most of [start, end) (the nearest one when no turn overlaps it)."""
        overlap: dict[str, float] = {}
        for s, e, label in self.turns:
            if s < end and e > start:
                overlap[label] = overlap.get(label, 0.0) + min(e, end) - max(s, start)
        if not overlap:
            return self.at((start + end) / 2)
        return max(overlap.items(), key=lambda item: item[1])[0]


def _distance(turn: tuple[float, float, str], t: float) -> float:
    return 0.0 if turn[0] <= t <= turn[1] else min(abs(turn[0] - t), abs(turn[1] - t))


__all__ = ["SpeakerCount", "SpeakerTimeline", "centroids", "cluster", "names", "resegment", "turns"]
