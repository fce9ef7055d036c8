"""Convert a conversation written in the compact hand form into the recall dataset's JSON (bench/data/*/README.md).

    .venv/bin/python bench/recall_compact.py SOURCE.txt OUT.json

The compact form, one line each::

    id: conv-rosa-marcus
    speakers: Rosa Delgado | Marcus Bell
    tz: -06:00
    == 1 2023-01-14T19:20                  a session: its number and local date-time
    R: text {label} {label2}               a turn: the first letter of a speaker's name, the text, labels
    ?? temporal | question | answer | label label2    a question with the labels of its evidence turns

Labels name turns so that every evidence id comes from the turn it labels, never from counting by hand.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

_LABELS = re.compile(r"\s*\{(\w+)\}")


def convert(text: str) -> dict[str, Any]:
    head: dict[str, str] = {}
    sessions: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("== "):
            number, when = line[3:].split()
            sessions.append({"session": int(number), "date_time": f"{when}:00{head['tz']}", "turns": []})
        elif line.startswith("?? "):
            category, question, answer, evidence = (p.strip() for p in line[3:].split("|"))
            ids = [labels[label] for label in evidence.split()]
            questions.append({"question": question, "answer": answer, "evidence": ids, "category": category})
        elif sessions:
            letter, said = line.split(": ", 1)
            speaker = next(s for s in head["speakers"].split(" | ") if s.startswith(letter))
            turn_id = f"D{sessions[-1]['session']}:{len(sessions[-1]['turns']) + 1}"
            for label in _LABELS.findall(said):
                if label in labels:
                    raise SystemExit(f"label {label} used twice")
                labels[label] = turn_id
            sessions[-1]["turns"].append({"id": turn_id, "speaker": speaker, "text": _LABELS.sub("", said).strip()})
        else:
            key, value = line.split(": ", 1)
            head[key] = value
    return {"id": head["id"], "speakers": head["speakers"].split(" | "), "sessions": sessions, "questions": questions}


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(json.dumps(convert(source.read_text(encoding="utf-8")), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
