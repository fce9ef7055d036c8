"""The README and docs/ point only inside the repository: every relative link resolves to a file here, and no
text cites a path on the machine the docs were written on."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
MACHINE_PATH = re.compile(r"(?<![\w.])(/work/|/home/|/root/|\.\./shared/)|(?<![\w./-])shared/research/")


def test_relative_links_resolve_and_no_machine_paths() -> None:
    broken, cited = [], []
    for page in PAGES:
        text = page.read_text()
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
        cited += [f"{page.relative_to(ROOT)}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert broken == [] and cited == []
