"""Who spoke when: speaker turns from voice embeddings of sliding windows over speech, clustered for the whole job.

Every window of every file of a job is clustered together (agglomerative, average linkage on cosine distance,
scipy), so ``speaker_1`` is one voice across all clips and all files of the job. One speaker when even the last
merge joins windows closer than ``ONE_SPEAKER_DISTANCE``; otherwise the number of clusters (within the job's
``min_speakers``..``max_speakers``; ``speakers`` fixes it) whose silhouette is best (scikit-learn). Both were
measured in bench/diarization.py. Clusters of a few windows (a cough, a laugh, a
window that straddles two voices) are folded into the nearest large one. Labels are numbered in order of first
appearance. A moment of speech takes the label of the window whose centre is nearest, so a change of speaker
is placed half way between two windows of different voices (within ``hop``/2 of where it is).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ONE_SPEAKER_DISTANCE = 0.28  # below this last merge distance everything is one voice; see docs/providers.md
MAX_AUTO_SPEAKERS = 10  # the most speakers found without a hint
MAX_CLUSTERED = 4000  # windows (~50 min of speech); more are assigned to the clusters of a sample
MIN_CLUSTER_SHARE = 0.05  # a cluster with fewer of the windows (and fewer than 3) is folded into a larger one
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
    if n > MAX_CLUSTERED:  # linkage needs n² memory: cluster an even sample, then give the rest the nearest
        sample = np.linspace(0, n - 1, MAX_CLUSTERED).astype(int)
        keys, centroids = _centroids(vectors[sample], cluster(vectors[sample], count))
        return _renumber(np.array(keys)[np.argmax(vectors @ centroids.T, axis=1)])
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    if count.low <= 1 and tree[-1, 2] < ONE_SPEAKER_DISTANCE:
        return np.zeros(n, dtype=int)
    best: tuple[float, np.ndarray] | None = None
    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)  # once, for every candidate count's silhouette
    np.fill_diagonal(distances, 0.0)
    for k in range(max(2, count.low), min(n, count.high + 3, MAX_AUTO_SPEAKERS + 3) + 1):
        labels = _fold_small(vectors, fcluster(tree, t=k, criterion="maxclust") - 1)
        score = _separation(distances, labels, count)
        if score is not None and (best is None or score > best[0]):
            best = (score, labels)
    if best is None:
        return _split(vectors, min(max(count.low, 2), n)) if count.low >= 2 else np.zeros(n, dtype=int)
    return _renumber(best[1])


def _separation(distances: np.ndarray, labels: np.ndarray, count: SpeakerCount) -> float | None:
    """The silhouette (cosine distances given) of a labelling whose cluster count the hint allows, else None."""
    from sklearn.metrics import silhouette_score

    found = len(set(labels.tolist()))
    if found < 2 or not count.low <= found <= min(count.high, MAX_AUTO_SPEAKERS):
        return None
    return float(silhouette_score(distances, labels, metric="precomputed"))


def _centroids(vectors: np.ndarray, labels: np.ndarray) -> tuple[list[int], np.ndarray]:
    keys = sorted(set(labels.tolist()))
    means = np.stack([vectors[labels == k].mean(axis=0) for k in keys])
    return keys, means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-9)


def _fold_small(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fold clusters with too few windows into the nearest larger cluster (by centroid similarity)."""
    sizes = np.bincount(labels)
    small = max(2, int(MIN_CLUSTER_SHARE * len(labels)))
    big = [int(c) for c in np.flatnonzero(sizes > small)] or [int(np.argmax(sizes))]
    keys, centroids = _centroids(vectors, np.where(np.isin(labels, big), labels, -1))
    keep = [i for i, k in enumerate(keys) if k >= 0]
    out = labels.copy()
    for i in np.flatnonzero(~np.isin(labels, big)):
        out[i] = keys[keep[int(np.argmax(centroids[keep] @ vectors[i]))]]
    return out


def _merge_closest(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One fewer cluster: the two whose centroids are most alike become one."""
    keys, centroids = _centroids(vectors, labels)
    similarity = centroids @ centroids.T - 2 * np.eye(len(keys))
    a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    return np.where(labels == keys[int(b)], keys[int(a)], labels)


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


__all__ = ["SpeakerCount", "SpeakerTimeline", "cluster", "names", "turns"]
