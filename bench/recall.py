"""Long-term conversational recall: ingestd's ``/context`` block beside plain BM25 over the raw turns.

    .venv/bin/python bench/recall.py                          # every conversation in bench/data/recall, SQLite
    .venv/bin/python bench/recall.py --quick                  # the first conversation only
    .venv/bin/python bench/recall.py --database postgresql://postgres@127.0.0.1:5432/test   # a new database there
    .venv/bin/python bench/recall.py --data DIR --max-words 400
    .venv/bin/python bench/recall.py --data bench/data/recall_long   # LoCoMo scale: 26-27 sessions, ~430 turns each
    .venv/bin/python bench/recall.py --baseline-only          # BM25 alone (no service): the dataset's difficulty
    .venv/bin/python bench/recall.py --check                  # validate the dataset (evidence ids, answers)
    .venv/bin/python bench/recall.py --one-user --data bench/data/recall bench/data/recall_heldout
                                                              # every conversation as ONE user's memory
    .venv/bin/python bench/recall.py --keep /tmp/r1 --out bench/out/r1.json
                                  # the SQLite database kept in /tmp/r1; run again: asked without ingesting

The dataset (bench/data/recall/README.md) is LoCoMo-shaped: multi-session chats between two people, turns
``D<session>:<turn>``, questions with an answer, evidence turn ids and a category.

The service is ``ingestd serve`` (API + worker, default offline settings) in a subprocess on a free port, used
over HTTP as an external benchmark would: each session is one memory job (user_id = the conversation id, every
turn a ``user`` message with its ``id``, ``name`` = speaker and ``timestamp`` = the session's date-time plus one
minute per turn). Each question is then asked on ``GET /v1/memory/{user}/context?q=&max_words=N``. Scored:

* **cited**: every evidence id is among the block's ``message_ids`` (**any**: at least one is);
* **answer words**: the share of the answer's normalised content words (lowercase, no punctuation, number words
  as digits, stopwords dropped, Snowball-stemmed) present in the block's text (for an answer naming no date, the
  block's own dates are left out, so that "six" does not match "6 February 2025");
* **words**: the block's size in words;
* **date found** (temporal questions): the answer's date is in the block as a date ("9 April 2024").

``--one-user`` puts every conversation loaded into one user's memory (ids prefixed with their conversation): a
longer memory with more speakers, for how recall holds as a memory grows.

Rows: per category, "overall" (adversarial questions are scored apart) and "not temporal" (BM25 over undated
turns cannot hold a date, so that row is the fair comparison), then one line per conversation.

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
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import common
import httpx
from common import free_port, percentile
from rank_bm25 import BM25Okapi
from recall_data import (
    CATEGORIES,
    DATA,
    SCORED_APART,
    Conversation,
    answer_words,
    date_found,
    load,
    normalise,
    one_user,
    run_check,
    unaccent,
)  # fmt: skip

OUT = Path(__file__).resolve().parent / "out"
NO_DATES = "not temporal"

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
    """One system's answer to one question: cited (all evidence ids / any), answer words, words, and for a
    temporal question whether its date is in the text as a date."""
    evidence = set(q["evidence"])
    return {
        "cited": evidence <= set(ids),
        "any": bool(evidence & set(ids)),
        "answer": answer_words(q["answer"], text),
        "words": len(text.split()),
        "date": date_found(q["answer"], text) if q["category"] == "temporal" else None,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(rows: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, Any]]:
    """Per category, "overall" (adversarial apart) and "not temporal", and per system: n, cited, any, answer,
    words, date."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["category"]].append(r)
        if r["category"] not in SCORED_APART:
            groups["overall"].append(r)
        if r["category"] not in [*SCORED_APART, "temporal"]:
            groups[NO_DATES].append(r)  # BM25 over undated turns cannot hold a date: the fair comparison
    table: dict[str, dict[str, Any]] = {}
    for name in [c for c in [*CATEGORIES, "overall", NO_DATES, *SCORED_APART] if c in groups]:
        group = groups[name]
        table[name] = {"n": len(group)}
        for s in systems:
            cell = {k: _mean([float(r[s][k]) for r in group]) for k in ("cited", "any", "answer", "words")}
            cell["date"] = _mean([float(r[s]["date"]) for r in group if r[s]["date"] is not None])
            table[name][s] = cell
    return table


def _pair(a: float, b: float) -> str:
    return "-" if a != a else f"{a:.2f} / {b:.2f}"  # nan: the category has no such score


def print_table(table: dict[str, dict[str, Any]], systems: list[str]) -> None:
    if systems == ["bm25"]:
        print(f"{'category':<12} {'n':>4} {'cited':>6} {'any':>6} {'answer':>7} {'words':>6}")
        for name, row in table.items():
            b = row["bm25"]
            print(
                f"{name:<12} {row['n']:>4} {b['cited']:>6.2f} {b['any']:>6.2f} {b['answer']:>7.2f} {b['words']:>6.0f}"
            )
        return
    print(f"{'category':<12} {'n':>4} {'cited':>13} {'any cited':>13} {'answer words':>13} {'ratio':>6} "
          f"{'words':>6} {'date found':>13}")  # fmt: skip
    for name, row in table.items():
        i, b = row["ingestd"], row["bm25"]
        ratio = i["answer"] / b["answer"] if b["answer"] else float("inf")
        print(
            f"{name:<12} {row['n']:>4} {_pair(i['cited'], b['cited']):>13} {_pair(i['any'], b['any']):>13} "
            f"{_pair(i['answer'], b['answer']):>13} {ratio:>6.2f} {i['words']:>6.0f} {_pair(i['date'], b['date']):>13}"
        )
    print("(each pair: ingestd / BM25; ratio = answer words ingestd / BM25; words = ingestd's mean block size)")


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
def ingestd_serve(database: str | None, keep: Path | None = None) -> Iterator[str]:
    """``ingestd serve`` (API + worker, default offline settings) on a free port; its base URL once
    ``/healthz`` answers. SQLite in a temporary folder (or in ``keep``, kept) unless ``database`` (a fresh
    PostgreSQL database) is given."""
    port = free_port()
    with _folder(keep) as folder:
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


@contextmanager
def _folder(keep: Path | None) -> Iterator[str]:
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="bench-recall-") as folder:
            yield folder
    else:
        keep.mkdir(parents=True, exist_ok=True)
        yield str(keep.resolve())


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
        first = {k: failed[0].get(k) for k in ("id", "status", "error")}
        print(f"{len(failed)} of {len(jobs)} jobs did not succeed; the first: {json.dumps(first)}", file=sys.stderr)
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


async def run_service(
    convs: list[Conversation], max_words: int, server: str | None, keep: Path | None = None
) -> dict[str, Any]:
    """Ingest and ask on SQLite, or on a new database of the PostgreSQL ``server`` (dropped afterwards). With
    ``keep`` (SQLite), the database stays in that folder, and a folder that already holds one is asked without
    ingesting again (to compare ranking changes on the same ingested data)."""
    if server is None:
        return await _run_service(convs, max_words, None, keep)
    common.PG_ADMIN = server
    async with common.fresh_database("postgresql", "recall") as url:
        return await _run_service(convs, max_words, url)


async def _run_service(
    convs: list[Conversation], max_words: int, database: str | None, keep: Path | None = None
) -> dict[str, Any]:
    reuse = keep is not None and (keep / "ingestd.db").exists()
    with ingestd_serve(database, keep) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            if reuse:
                speed = {"jobs": 0, "messages": 0, "seconds": 0.0, "messages_per_s": 0.0}
                print(f"asking the memory already in {keep} (no ingest)")
            else:
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
    per_conversation = by_conversation(rows)
    print(f"/context latency over HTTP: p50 {search['p50_ms']:.1f} ms, p99 {search['p99_ms']:.1f} ms")
    return {"mode": "ingestd vs bm25", "max_words": max_words, "ingest": speed, "context_latency": search,
            "table": table, "conversations": per_conversation, "questions": rows}  # fmt: skip


def by_conversation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall cited and answer words per conversation (adversarial apart), printed one line each: a result
    that holds on one conversation only is tuned to it."""
    print("per conversation (not adversarial): cited ingestd / BM25, answer words ingestd / BM25")
    out = {}
    for conv in sorted({r["conversation"] for r in rows}):
        mine = [r for r in rows if r["conversation"] == conv]
        overall = summarise(mine, ["ingestd", "bm25"])["overall"]
        i, b = overall["ingestd"], overall["bm25"]
        print(f"  {conv:<22} {overall['n']:>4}  {_pair(i['cited'], b['cited'])}   {_pair(i['answer'], b['answer'])}")
        out[conv] = overall
    return out


# ---------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, nargs="+", default=[DATA], help="folders of conversation JSON files (bench/data/recall)"
    )
    parser.add_argument(
        "--database", help="a PostgreSQL server, postgresql://... (a new database on it, dropped after; default SQLite)"
    )
    parser.add_argument("--max-words", type=int, default=400, help="the /context word budget (default 400)")
    parser.add_argument("--quick", action="store_true", help="the first conversation only")
    parser.add_argument("--baseline-only", action="store_true", help="BM25 alone, top --top turns, no service")
    parser.add_argument("--top", type=int, default=10, help="turns BM25 keeps in --baseline-only (default 10)")
    parser.add_argument("--check", action="store_true", help="validate the dataset and exit")
    parser.add_argument(
        "--keep", type=Path, help="SQLite in this folder, kept; a folder that holds one is asked without ingesting"
    )
    parser.add_argument("--out", type=Path, default=OUT / "recall.json", help="results (bench/out/recall.json)")
    parser.add_argument(
        "--one-user", action="store_true", help="every conversation as one user's memory (a longer memory)"
    )
    args = parser.parse_args()
    convs = [c for folder in args.data for c in load(folder)]
    convs = convs[:1] if args.quick else convs
    if args.check:
        sys.exit(run_check(convs))
    if args.one_user:
        convs = [one_user(convs)]
    if args.baseline_only:
        result = baseline_only(convs, args.top)
    else:
        result = asyncio.run(run_service(convs, args.max_words, args.database, args.keep))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
