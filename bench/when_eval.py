"""Time expressions in chat: ingestd's rules (``memory.when``) against dateparser and parsedatetime.

A labelled set of chat sentences (written for this comparison, not the unit tests' phrasings), each with the
message's reference time and the spans of days its time expressions name (none for the sentences that hold no date).
Per category it prints: expressions found (a library's date counts when it falls inside the labelled span, the
rules' span when it lies inside it), false positives (a detection matching no labelled span), and throughput.

    .venv/bin/python bench/when_eval.py            # the libraries are skipped when not installed
    pip install dateparser parsedatetime           # to compare against them
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from when_eval_data import DIRECTION, DIRECTION_HELD_OUT, HELD_OUT, LABELLED, RECALL_LABELS, R

from ingestd.pipelines.memory import inputs, when

UNSEEN = "conv-hannah-kenji"
Found = list[tuple[date, date]]  # the span each detection names (a library's date is a one-day span)
Resolver = Callable[[str, datetime], Found]


def _span(labelled: str) -> tuple[date, date]:
    first, _, last = labelled.partition("..")
    return date.fromisoformat(first), date.fromisoformat(last or first)


def rules(text: str, reference: datetime) -> Found:
    return [(m.first, m.last) for m in when.resolve_times(text, reference)]


def dateparser_resolver(prefer: str = "past") -> Resolver | None:
    try:
        from dateparser.search import search_dates  # type: ignore[import-untyped]
    except ImportError:
        return None

    def resolve(text: str, reference: datetime) -> Found:
        settings = {"RELATIVE_BASE": reference, "PREFER_DATES_FROM": prefer}
        hits = search_dates(text, languages=["en"], settings=settings) or []
        return [(d.date(), d.date()) for _, d in hits]

    return resolve


def parsedatetime_resolver() -> Resolver | None:
    try:
        import parsedatetime  # type: ignore[import-untyped]
    except ImportError:
        return None
    calendar = parsedatetime.Calendar()

    def resolve(text: str, reference: datetime) -> Found:
        hits = calendar.nlp(text, sourceTime=reference) or ()
        return [(hit[0].date(), hit[0].date()) for hit in hits]

    return resolve


# One message to score: its reference time, its text, and its labelled spans with their categories ("?": skip it).
Sample = tuple[datetime, str, list[tuple[str, str]]]


def written_samples(sentences: list[tuple[str, str, str, list[str]]]) -> list[Sample]:
    return [(R[ref], text, [(category, span) for span in labelled]) for category, ref, text, labelled in sentences]


def recall_samples(folder: Path, conversations: set[str]) -> list[Sample]:
    """Every turn of the labelled recall conversations (unlabelled turns expect no date), sent at its session's time."""
    samples: list[Sample] = []
    for path in sorted(folder.glob("*.json")):
        conversation = json.loads(path.read_text())
        labels = RECALL_LABELS.get(conversation["id"])
        if labels is None or conversation["id"] not in conversations:
            continue
        for session in conversation["sessions"]:
            at = datetime.fromisoformat(session["date_time"]).replace(tzinfo=None)
            for turn in session["turns"]:
                spans = [
                    tuple(label.split(":", 1)) if ":" in label else ("?", "?") for label in labels.get(turn["id"], [])
                ]
                samples.append((at, turn["text"], [(c, v) for c, v in spans]))
    return samples


@dataclass
class Tally:
    expressions: int = 0
    found: int = 0


def score(resolve: Resolver, samples: list[Sample]) -> tuple[dict[str, Tally], int]:
    """Per category, labelled expressions found (a detection inside the span); and detections matching none."""
    tallies: dict[str, Tally] = {}
    false_positives = 0
    for reference, text, labelled in samples:
        if any(category == "?" for category, _ in labelled):
            continue
        unmatched = list(resolve(text, reference))
        for category, span in labelled:
            first, last = _span(span)
            tally = tallies.setdefault(category, Tally())
            tally.expressions += 1
            hit = next((d for d in unmatched if first <= d[0] and d[1] <= last), None)
            if hit is not None:
                tally.found += 1
                unmatched.remove(hit)
        false_positives += len(unmatched)
    return tallies, false_positives


def throughput(resolve: Resolver, samples: list[Sample], seconds: float) -> float:
    """Messages per second over ``samples``, repeated for about ``seconds``."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for reference, text, _ in samples:
            resolve(text, reference)
        done += len(samples)
    return done / (time.perf_counter() - started)


def table(title: str, samples: list[Sample], resolvers: dict[str, Resolver | None]) -> None:
    categories = sorted({c for _, _, labelled in samples for c, _ in labelled} - {"?"})
    expressions = sum(len(labelled) for _, _, labelled in samples if all(c != "?" for c, _ in labelled))
    print(f"\n{title}: {len(samples)} messages, {expressions} labelled expressions\n")
    header = "| resolver | " + " | ".join(categories) + " | all found | false positives |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, resolve in resolvers.items():
        if resolve is None:
            print(f"| {name} | not installed |")
            continue
        tallies, false_positives = score(resolve, samples)
        cells = [f"{tallies[c].found}/{tallies[c].expressions}" if c in tallies else "-" for c in categories]
        found = sum(t.found for t in tallies.values()) / expressions
        print(f"| {name} | {' | '.join(cells)} | {found:.2f} | {false_positives} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent measuring each resolver's speed")
    args = parser.parse_args()
    resolvers = {"ingestd rules": rules, "dateparser": dateparser_resolver(), "parsedatetime": parsedatetime_resolver()}
    folder = Path(__file__).parent / "data" / "recall"
    recall = recall_samples(folder, set(RECALL_LABELS) - {UNSEEN})
    unseen = recall_samples(folder, {UNSEEN})
    table("Written sentences, tuning set", written_samples(LABELLED), resolvers)
    table(
        "Written sentences, held out (first run of the rules: 0.88 found, 2 false positives)",
        written_samples(HELD_OUT),
        resolvers,
    )
    table("Recall benchmark conversations, every turn (first run of the rules: 0.72, 22)", recall, resolvers)
    table(
        f"Recall benchmark, {UNSEEN}, labelled before the rules first ran on it (first run: 0.76, 6)", unseen, resolvers
    )
    direction = resolvers | {f"dateparser, {p}": dateparser_resolver(p) for p in ("future", "current_period")}
    table(
        "Written sentences, direction: a month, season or weekday without one (written before the rules had it;"
        " first run: 0.80 found, 9 false positives)",
        written_samples(DIRECTION),
        direction,
    )
    table(
        "Written sentences, direction, held out (first run of the rules: 0.85 found, 2 false positives)",
        written_samples(DIRECTION_HELD_OUT),
        direction,
    )
    print("\n| resolver | messages/s (one core, the recall conversations' turns) |\n|---|---|")
    for name, resolve in resolvers.items():
        if resolve is not None:
            print(f"| {name} | {throughput(resolve, recall + unseen, args.seconds):,.0f} |")
    longest = " ".join(text for _, text, _ in recall)[: inputs.MAX_MESSAGE_CHARS]
    started = time.perf_counter()
    dates = len(when.resolve_times(longest, datetime(2024, 6, 1)))
    elapsed = time.perf_counter() - started
    print(f"\nThe longest message accepted ({len(longest):,} characters, {dates} dates): {elapsed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
