"""Scores for bench/speech.py: word error rate, speaker-attributed words, diarization error rate, structure.

Text is normalised the way Whisper's evaluation does (``whisper_normalizer``'s English normaliser: case,
punctuation, contractions, British spellings, spelled-out numbers as digits on both sides) before ``jiwer``
counts errors, with two more rules for the references' own spellings (``fair=True``, the default):

* the keypad symbols a prompt's transcript writes for a spoken word (``*`` "star", ``#`` "pound");
* compounds written apart on one side and as one word on the other ("log in" / "login", "de-activated" /
  "deactivated", "touch tone" / "touchtone", "cold-hearted" / "coldhearted"): Whisper's normaliser turns a
  hyphen into a space, so a hyphenated reference and a closed-up transcript (or the reverse) differ only in
  spelling. Two neighbouring words are joined when the other side of the same pair has them as one word.

``fair=False`` gives Whisper's normaliser alone (the numbers before this change).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import jiwer
import numpy as np
from whisper_normalizer.english import EnglishTextNormalizer

_normalise = EnglishTextNormalizer()
SYMBOLS = {"*": " star ", "#": " pound "}


def normalise(text: str) -> str:
    """Whisper's English normalisation, less the punctuation-only tokens it leaves (from "…")."""
    for symbol, word in SYMBOLS.items():
        text = text.replace(symbol, word)
    return " ".join(w for w in _normalise(text).split() if any(ch.isalnum() for ch in w))


def join_compounds(text: str, other: str) -> str:
    """``text`` with two neighbouring words joined where ``other`` has them as one word ("log in" -> "login")."""
    vocabulary = set(other.split())
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and words[i] + words[i + 1] in vocabulary and words[i] not in vocabulary:
            out.append(words[i] + words[i + 1])
            i += 2
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def wer(references: Sequence[str], hypotheses: Sequence[str], fair: bool = True) -> tuple[float, int]:
    """Corpus word error rate over pairs of texts (normalised), and the number of reference words."""
    if not fair:
        references = [r.replace("*", "").replace("#", "") for r in references]
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    if fair:
        refs, hyps = [join_compounds(r, h) for r, h in zip(refs, hyps, strict=True)], hyps
        hyps = [join_compounds(h, r) for r, h in zip(refs, hyps, strict=True)]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    words = sum(len(r.split()) for r, _ in pairs)
    if not pairs:
        return 0.0, 0
    out = jiwer.process_words([r for r, _ in pairs], [h or "<empty>" for _, h in pairs])
    return (out.substitutions + out.deletions + out.insertions) / words, words


def _labelled_words(turns: Sequence[tuple[str | None, str]]) -> tuple[list[str], list[str | None]]:
    words: list[str] = []
    labels: list[str | None] = []
    for label, text in turns:
        for word in normalise(text).split():
            words.append(word)
            labels.append(label)
    return words, labels


def _best_mapping(pairs: Sequence[tuple[str, str | None]]) -> dict[str | None, str]:
    """Hypothesis label → reference label maximising agreement (exhaustive: a handful of speakers)."""
    counts = Counter(pairs)
    refs = sorted({r for r, _ in pairs})
    hyps = sorted({h for _, h in pairs if h is not None})
    best: dict[str | None, str] = {}
    best_score = -1
    for perm in itertools.permutations(refs, min(len(refs), len(hyps))):
        mapping = dict(zip(hyps, perm, strict=False))
        score = sum(n for (r, h), n in counts.items() if h is not None and mapping.get(h) == r)
        if score > best_score:
            best, best_score = dict(mapping), score
    return best


def speaker_word_accuracy(reference: Sequence[tuple[str, str]], hypothesis: Sequence[tuple[str | None, str]]) -> float:
    """Share of reference words that are recognised (aligned) and carry the right speaker, after the best
    one-to-one mapping of hypothesis labels to reference speakers. ``reference``: (speaker, text) turns;
    ``hypothesis``: (label or None, text) segments in time order."""
    ref_words, ref_labels = _labelled_words(reference)
    hyp_words, hyp_labels = _labelled_words(hypothesis)
    if not ref_words:
        return 0.0
    if not hyp_words:
        return 0.0
    alignment = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words)).alignments[0]
    pairs: list[tuple[str, str | None]] = []
    for chunk in alignment:
        if chunk.type in ("equal", "substitute"):
            for i, j in zip(
                range(chunk.ref_start_idx, chunk.ref_end_idx),
                range(chunk.hyp_start_idx, chunk.hyp_end_idx),
                strict=True,
            ):
                pairs.append((str(ref_labels[i]), hyp_labels[j]))
    mapping = _best_mapping(pairs)
    right = sum(1 for r, h in pairs if h is not None and mapping.get(h) == r)
    return right / len(ref_words)


def der(
    reference: Sequence[tuple[float, float, str]],
    hypothesis: Sequence[tuple[float, float, str | None]],
    step: float = 0.01,
) -> float:
    """Diarization error rate on 10 ms frames, no collar, overlap frames scored on their first speaker:
    (missed speech + false alarm + speaker confusion) / reference speech, after the best label mapping.
    A hypothesis span without a label counts as speech with no speaker (confusion)."""
    end = max([e for _, e, _ in reference] + [e for _, e, _ in hypothesis] + [0.0])
    frames = int(np.ceil(end / step)) + 1
    ref = [None] * frames
    hyp: list[str | None] = [None] * frames
    hyp_speech = np.zeros(frames, dtype=bool)
    for s, e, label in reference:
        for f in range(int(s / step), int(e / step)):
            ref[f] = ref[f] or label
    for s, e, label in hypothesis:
        for f in range(int(s / step), int(e / step)):
            hyp_speech[f] = True
            hyp[f] = hyp[f] or label
    total = sum(1 for r in ref if r is not None)
    if total == 0:
        return 0.0
    mapping = _best_mapping([(str(r), h) for r, h in zip(ref, hyp, strict=True) if r is not None and h is not None])
    missed = sum(1 for f in range(frames) if ref[f] is not None and not hyp_speech[f])
    false_alarm = sum(1 for f in range(frames) if ref[f] is None and hyp_speech[f])
    confusion = sum(1 for f in range(frames) if ref[f] is not None and hyp_speech[f] and mapping.get(hyp[f]) != ref[f])
    return (missed + false_alarm + confusion) / total


def _has_keys(text: str, keys: str) -> bool:
    words = set(normalise(text).split())
    return all(k in words for k in normalise(keys).split())


def structure_scores(
    expected: Any, conversations: Sequence[dict[str, Any]], voice_of: dict[str, int]
) -> dict[str, Any]:
    """Precision and recall of action items and events, and the share of found action items whose owner is
    right. ``voice_of`` maps the result's speaker labels to the script's voices (the best mapping)."""
    actions = [a for c in conversations for a in (c.get("action_items") or [])]
    events = [e for c in conversations for e in (c.get("events") or [])]
    found_actions = [any(_has_keys(a["description"], keys) for a in actions) for _, keys in expected.actions]
    useful_actions = [any(_has_keys(a["description"], keys) for _, keys in expected.actions) for a in actions]
    owners = 0
    for owner, keys in expected.actions:
        match = next((a for a in actions if _has_keys(a["description"], keys)), None)
        if match is not None and voice_of.get(str(match.get("owner"))) == owner:
            owners += 1

    def event_ok(event: dict[str, Any], word: str, day: str) -> bool:
        text = f"{event.get('title', '')} {event.get('description', '')}"
        return _has_keys(text, word) and str(event.get("starts_at") or "").startswith(day)

    found_events = [any(event_ok(e, w, d) for e in events) for w, d in expected.events]
    useful_events = [any(event_ok(e, w, d) for w, d in expected.events) for e in events]
    return {
        "actions": (sum(useful_actions), len(actions), sum(found_actions), len(expected.actions)),
        "owners": owners,
        "events": (sum(useful_events), len(events), sum(found_events), len(expected.events)),
    }
