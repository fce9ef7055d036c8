"""Long-term conversational recall: ingestd's ``/context`` block beside plain BM25 over the raw turns.

    .venv/bin/python bench/recall.py                          # every conversation in bench/data/recall, SQLite
    .venv/bin/python bench/recall.py --quick                  # the first conversation only
    .venv/bin/python bench/recall.py --database postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/recall.py --data DIR --max-words 400
    .venv/bin/python bench/recall.py --baseline-only          # BM25 alone (no service): the dataset's difficulty
    .venv/bin/python bench/recall.py --check                  # validate the dataset (evidence ids, answers)

The dataset (bench/data/recall/README.md) is LoCoMo-shaped: multi-session chats between two people, turns
``D<session>:<turn>``, questions with an answer, evidence turn ids and a category.

The service is ``ingestd serve`` (API + worker, default offline settings) in a subprocess on a free port, used
over HTTP as an external benchmark would: each session is one memory job (user_id = the conversation id, every
turn a ``user`` message with its ``id``, ``name`` = speaker and ``timestamp`` = the session's date-time plus one
minute per turn). Each question is then asked on ``GET /v1/memory/{user}/context?q=&max_words=N``. Scored:

* **cited**: every evidence id is among the block's ``message_ids`` (**any**: at least one is);
* **answer words**: the share of the answer's normalised content words (lowercase, no punctuation, number words
  as digits, stopwords dropped, a light suffix stemmer) present in the block's text;
* **words**: the block's size in words.

BM25 (``rank_bm25.BM25Okapi`` over the turns as the transcript has them, ``Speaker: text``, no dates) ranks the
conversation's turns for the same question; the top turns are joined and cut to the same number of words as
ingestd's block for that question; a turn counts as cited when at least half of its words made the cut.
Results go to bench/out/recall.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from common import free_port, percentile
from rank_bm25 import BM25Okapi
from snowballstemmer import stemmer

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "recall"
OUT = HERE / "out"
CATEGORIES = ["single-hop", "multi-hop", "temporal", "open-domain"]
SCORED_APART = ["adversarial"]

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t don ll re ve m d
    o y also did does going get got still like really just im ive id dont cant wont didnt isnt thats youre hes shes
    theyre""".split()
)
NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}
NUMBERS |= {"first": "1", "second": "2", "third": "3"}
_TOKEN = re.compile(r"[a-z0-9]+")
_ORDINAL = re.compile(r"^(\d+)(st|nd|rd|th)$")
_STEMMER = stemmer("english")


def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem, so "runs"/"running" and "beagle"/"beagles" meet."""
    return _STEMMER.stemWord(word)  # type: ignore[no-any-return]


def normalise(text: str) -> list[str]:
    """Content words: lowercase, accents kept, punctuation gone, numbers as digits, stopwords dropped, stemmed."""
    out = []
    for raw in _TOKEN.findall(text.lower().replace("'", "")):
        word = NUMBERS.get(raw, raw)
        if (m := _ORDINAL.match(word)) is not None:
            word = m.group(1)
        if word in STOPWORDS:
            continue
        out.append(word if word.isdigit() else stem(word))
    return out


def _words_of(text: str) -> set[str]:
    return set(normalise(unaccent(text)))


def unaccent(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def answer_share(answer: str, block: str) -> float:
    """The share of the answer's content words present in the block."""
    wanted = _words_of(answer)
    if not wanted:
        return 1.0
    return len(wanted & _words_of(block)) / len(wanted)


# ---------------------------------------------------------------------------------------------------- dataset


@dataclass
class Conversation:
    id: str
    speakers: list[str]
    sessions: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    turns: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_of: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.sessions:
            for t in s["turns"]:
                self.turns[t["id"]] = t
                self.session_of[t["id"]] = datetime.fromisoformat(s["date_time"])


def load(folder: Path) -> list[Conversation]:
    """Every ``*.json`` conversation of ``folder``, by file name."""
    convs = []
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        convs.append(Conversation(raw["id"], raw["speakers"], raw["sessions"], raw["questions"]))
    if not convs:
        sys.exit(f"no conversations (*.json) in {folder}")
    return convs


_MONTHS = "january february march april may june july august september october november december".split()
_DATE = re.compile(r"(?:(\d{1,2}) )?(" + "|".join(m.title() for m in _MONTHS) + r")? ?(\d{4})")


def answer_dates(answer: str) -> list[datetime]:
    """The dates an answer names ("7 May 2023", "June 2023", "2019"), at their first day."""
    found = []
    for day, month, year in _DATE.findall(answer):
        mo = _MONTHS.index(month.lower()) + 1 if month else 1
        found.append(datetime(int(year), mo, int(day) if day else 1))
    return found


def check(conv: Conversation) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one conversation: shapes, evidence ids, answers backed by their evidence."""
    errors, warnings = [], []
    if len(conv.sessions) < 15:
        warnings.append(f"{conv.id}: {len(conv.sessions)} sessions (< 15)")
    for s in conv.sessions:
        for i, t in enumerate(s["turns"], 1):
            if t["id"] != f"D{s['session']}:{i}" or t["speaker"] not in conv.speakers:
                errors.append(f"{conv.id}: bad turn {t}")
        if not 8 <= len(s["turns"]) <= 25:
            warnings.append(f"{conv.id}: session {s['session']} has {len(s['turns'])} turns")
    for q in conv.questions:
        errors += [f"{conv.id}: {q['question']!r}: no turn {e}" for e in q["evidence"] if e not in conv.turns]
        if q["category"] not in CATEGORIES + SCORED_APART:
            errors.append(f"{conv.id}: {q['question']!r}: category {q['category']!r}")
        if errors or q["category"] == "adversarial":
            continue
        problem = _unbacked(conv, q)
        if problem:
            (errors if problem.startswith("!") else warnings).append(f"{conv.id}: {q['question']!r}: {problem}")
    return errors, warnings


def _unbacked(conv: Conversation, q: dict[str, Any]) -> str:
    """Why the evidence does not back the answer ("!..." when not at all), or ""."""
    if q["category"] == "temporal":
        dates = answer_dates(q["answer"])
        said = [conv.session_of[e] for e in q["evidence"]]
        if not dates:
            return "! a temporal answer without a date"
        near = any(abs((d - s.replace(tzinfo=None)).days) <= 400 for d in dates for s in said)
        return "" if near else f"! {q['answer']} is far from the evidence sessions {said}"
    text = " ".join(conv.turns[e]["speaker"] + " " + conv.turns[e]["text"] for e in q["evidence"])
    share = answer_share(q["answer"], text)
    missing = sorted(_words_of(q["answer"]) - _words_of(text))
    if share == 0:
        return f"! none of the answer's words are in the evidence ({missing})"
    return "" if share >= 0.5 else f"only {share:.2f} of the answer's words in the evidence, missing {missing}"


# ---------------------------------------------------------------------------------------------------- BM25


class Bm25:
    """Plain BM25 over one conversation's turns, as the transcript has them ("Speaker: text", no dates)."""

    def __init__(self, conv: Conversation) -> None:
        self.turns = list(conv.turns.values())
        self.lines = [f"{t['speaker']}: {t['text']}" for t in self.turns]
        self.index = BM25Okapi([normalise(unaccent(line)) or ["_"] for line in self.lines])

    def ranked(self, question: str) -> list[int]:
        scores = self.index.get_scores(normalise(unaccent(question)))
        return sorted(range(len(scores)), key=lambda i: -scores[i])

    def block(self, question: str, words: int | None = None, turns: int | None = None) -> tuple[str, list[str]]:
        """The top turns joined and cut to ``words`` words (or the top ``turns`` turns); the ids of those
        turns at least half of whose words are in."""
        order = self.ranked(question)[: turns or len(self.turns)]
        kept: list[str] = []
        ids = []
        for i in order:
            line = self.lines[i].split()
            room = len(line) if words is None else words - len(kept)
            if room <= 0:
                break
            kept += line[:room]
            if min(room, len(line)) * 2 >= len(line):
                ids.append(self.turns[i]["id"])
        return " ".join(kept), ids


# ---------------------------------------------------------------------------------------------------- scoring


def score(q: dict[str, Any], text: str, ids: list[str]) -> dict[str, Any]:
    evidence = set(q["evidence"])
    return {
        "cited": evidence <= set(ids),
        "any": bool(evidence & set(ids)),
        "answer": answer_share(q["answer"], text),
        "words": len(text.split()),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(rows: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, Any]]:
    """Per category (and "overall", adversarial apart) and per system: n, cited, any, answer, words."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["category"]].append(r)
        if r["category"] not in SCORED_APART:
            groups["overall"].append(r)
    table: dict[str, dict[str, Any]] = {}
    for name in [c for c in [*CATEGORIES, "overall", *SCORED_APART] if c in groups]:
        group = groups[name]
        table[name] = {"n": len(group)}
        for s in systems:
            table[name][s] = {k: _mean([float(r[s][k]) for r in group]) for k in ("cited", "any", "answer", "words")}
    return table


def print_table(table: dict[str, dict[str, Any]], systems: list[str]) -> None:
    if systems == ["bm25"]:
        print(f"{'category':<12} {'n':>4} {'cited':>6} {'any':>6} {'answer':>7} {'words':>6}")
        for name, row in table.items():
            b = row["bm25"]
            print(
                f"{name:<12} {row['n']:>4} {b['cited']:>6.2f} {b['any']:>6.2f} {b['answer']:>7.2f} {b['words']:>6.0f}"
            )
        return
    head = f"{'category':<12} {'n':>4}  {'cited ingestd/BM25':>18}  {'any ingestd/BM25':>16}"
    print(head + f"  {'answer words ingestd/BM25':>25}  {'ratio':>5}  {'words':>5}")
    for name, row in table.items():
        i, b = row["ingestd"], row["bm25"]
        ratio = i["answer"] / b["answer"] if b["answer"] else float("inf")
        print(
            f"{name:<12} {row['n']:>4}  {i['cited']:>8.2f} / {b['cited']:<7.2f}  {i['any']:>7.2f} / {b['any']:<6.2f}"
            f"  {i['answer']:>12.2f} / {b['answer']:<10.2f}  {ratio:>5.2f}  {i['words']:>5.0f}"
        )


def baseline_only(convs: list[Conversation], top: int) -> dict[str, Any]:
    """BM25's top ``top`` turns per question, no service: how lexical the questions are."""
    rows = []
    for conv in convs:
        bm25 = Bm25(conv)
        for q in conv.questions:
            text, ids = bm25.block(q["question"], turns=top)
            rows.append({"conversation": conv.id, **q, "bm25": score(q, text, ids)})
    table = summarise(rows, ["bm25"])
    print(f"BM25 alone, top {top} turns per question ({len(rows)} questions, {len(convs)} conversations)")
    print_table(table, ["bm25"])
    return {"mode": f"bm25 top {top} turns", "table": table, "questions": rows}


# ---------------------------------------------------------------------------------------------------- ingestd


@contextmanager
def ingestd_serve(database: str | None) -> Iterator[str]:
    """``ingestd serve`` (API + worker, default offline settings) on a free port; its base URL once
    ``/healthz`` answers. SQLite in a temporary folder unless ``database`` is given."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-recall-") as folder:
        url = database or f"sqlite:///{folder}/ingestd.db"
        cmd = [str(Path(sys.executable).parent / "ingestd"), "serve", "--port", str(port), "--database", url]
        log = open(Path(folder) / "serve.log", "w")  # closed below
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=os.environ.copy())
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, proc, Path(folder) / "serve.log")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"ingestd serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("ingestd serve did not answer /healthz within 120 s")


def session_job(conv: Conversation, session: dict[str, Any]) -> dict[str, Any]:
    """One memory job: the session's turns as ``user`` messages with their ids, speakers and times."""
    start = datetime.fromisoformat(session["date_time"])
    messages = [
        {"id": t["id"], "name": t["speaker"], "role": "user", "content": t["text"],
         "timestamp": (start + timedelta(minutes=i)).isoformat()}
        for i, t in enumerate(session["turns"])
    ]  # fmt: skip
    return {"user_id": conv.id, "session_id": f"session-{session['session']}", "messages": messages}


async def ingest(client: httpx.AsyncClient, convs: list[Conversation]) -> dict[str, Any]:
    """Every session submitted at once, then every job polled until terminal; messages/s end to end."""
    started = time.perf_counter()
    jobs = []
    for conv in convs:
        for session in conv.sessions:
            response = await client.post("/v1/pipelines/memory/jobs", json=session_job(conv, session))
            if response.status_code != 202:
                print(f"submission refused ({response.status_code}):\n{response.text}", file=sys.stderr)
                sys.exit(2)
            jobs.append(response.json()["id"])
    failed = []
    for job_id in jobs:
        while (job := (await client.get(f"/v1/jobs/{job_id}")).json())["status"] in ("queued", "running"):
            await asyncio.sleep(0.1)
        if job["status"] != "succeeded":
            failed.append(job)
    seconds = time.perf_counter() - started
    if failed:
        print(f"{len(failed)} of {len(jobs)} jobs did not succeed; the first:\n{json.dumps(failed[0], indent=1)}")
        sys.exit(3)
    messages = sum(len(s["turns"]) for c in convs for s in c.sessions)
    return {"jobs": len(jobs), "messages": messages, "seconds": seconds, "messages_per_s": messages / seconds}


async def ask(client: httpx.AsyncClient, conv: Conversation, q: dict[str, Any], max_words: int) -> dict[str, Any]:
    started = time.perf_counter()
    params: dict[str, Any] = {"q": q["question"], "max_words": max_words}
    response = await client.get(f"/v1/memory/{conv.id}/context", params=params)
    latency = time.perf_counter() - started
    if response.status_code != 200:
        print(f"/context refused ({response.status_code}):\n{response.text}", file=sys.stderr)
        sys.exit(2)
    body = response.json()
    return {"text": body.get("context", ""), "ids": body.get("message_ids", []), "latency": latency}


async def run_service(convs: list[Conversation], max_words: int, database: str | None) -> dict[str, Any]:
    with ingestd_serve(database) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            speed = await ingest(client, convs)
            print(f"ingest: {speed['messages']} messages in {speed['jobs']} jobs, {speed['seconds']:.1f} s, "
                  f"{speed['messages_per_s']:.1f} messages/s end to end")  # fmt: skip
            rows, latencies = [], []
            for conv in convs:
                bm25 = Bm25(conv)
                for q in conv.questions:
                    got = await ask(client, conv, q, max_words)
                    latencies.append(got["latency"])
                    mine = score(q, got["text"], got["ids"])
                    text, ids = bm25.block(q["question"], words=mine["words"])
                    rows.append({"conversation": conv.id, **q, "ingestd": mine, "bm25": score(q, text, ids),
                                 "context": got["text"], "message_ids": got["ids"]})  # fmt: skip
    if not any(r["message_ids"] for r in rows):
        print("note: /context returned no message_ids for any question, so nothing counts as cited")
    table = summarise(rows, ["ingestd", "bm25"])
    search = {"p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}
    print(f"\n{len(rows)} questions, {len(convs)} conversations, max_words={max_words}; BM25 cut to the same words")
    print_table(table, ["ingestd", "bm25"])
    print(f"/context latency over HTTP: p50 {search['p50_ms']:.1f} ms, p99 {search['p99_ms']:.1f} ms")
    return {"mode": "ingestd vs bm25", "max_words": max_words, "ingest": speed, "context_latency": search,
            "table": table, "questions": rows}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- main


def run_check(convs: list[Conversation]) -> int:
    bad = 0
    for conv in convs:
        errors, warnings = check(conv)
        cats = defaultdict(int)
        for q in conv.questions:
            cats[q["category"]] += 1
        turns = sum(len(s["turns"]) for s in conv.sessions)
        print(f"{conv.id}: {len(conv.sessions)} sessions, {turns} turns, {len(conv.questions)} questions {dict(cats)}")
        for line in errors:
            print("  ERROR", line)
        for line in warnings:
            print("  warning", line)
        bad += len(errors)
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="a folder of conversation JSON files")
    parser.add_argument("--database", help="postgresql://... (default: SQLite in a temporary folder)")
    parser.add_argument("--max-words", type=int, default=400, help="the /context word budget (default 400)")
    parser.add_argument("--quick", action="store_true", help="the first conversation only")
    parser.add_argument("--baseline-only", action="store_true", help="BM25 alone, top --top turns, no service")
    parser.add_argument("--top", type=int, default=10, help="turns BM25 keeps in --baseline-only (default 10)")
    parser.add_argument("--check", action="store_true", help="validate the dataset and exit")
    args = parser.parse_args()
    convs = load(args.data)[:1] if args.quick else load(args.data)
    if args.check:
        sys.exit(run_check(convs))
    if args.baseline_only:
        result = baseline_only(convs, args.top)
    else:
        result = asyncio.run(run_service(convs, args.max_words, args.database))
    OUT.mkdir(exist_ok=True)
    (OUT / "recall.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
