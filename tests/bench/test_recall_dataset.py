"""The recall benchmark's dataset (bench/data/recall) stays what bench/recall.py and its README promise: valid
evidence ids and answers backed by their turns (``bench/recall.py --check``), and the shape the issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "recall"


def test_the_check_passes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recall.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout


def test_conversations_have_the_promised_shape() -> None:
    convs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(DATA.glob("*.json"))]
    assert len(convs) >= 3
    categories: Counter[str] = Counter()
    for conv in convs:
        assert len(conv["speakers"]) == 2
        assert len(conv["sessions"]) >= 15
        assert all(8 <= len(s["turns"]) <= 25 for s in conv["sessions"])
        categories.update(q["category"] for q in conv["questions"])
    assert sum(categories.values()) >= 150
    for name in ("single-hop", "multi-hop", "temporal"):
        assert categories[name] >= 0.2 * sum(categories.values()), categories
