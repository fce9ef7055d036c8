"""Imports point one way and never in a ring: the contracts of ``.importlinter`` (import-linter, on grimp's
graph of ``src/ingestd``) hold. docs/architecture.md draws the layers; the contracts list the known exceptions
with the reason each is still there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter import cli

import ingestd

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(ingestd.__file__).resolve().parent


def test_every_contract_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """Layers (cli → api → worker → runner → pipelines → providers/store → models/errors), the client free of the
    store, worker and FastAPI, pipelines free of the store, and no import cycle at any level of the package."""
    code = cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, report


def test_every_source_folder_is_a_package() -> None:
    """grimp skips namespace packages: a folder of modules without ``__init__.py`` would escape every contract."""
    folders = {path.parent for path in PACKAGE.rglob("*.py")}
    missing = sorted(str(f.relative_to(PACKAGE)) for f in folders if not (f / "__init__.py").exists())
    assert missing == []


def test_no_test_imports_a_bench_script() -> None:
    """Tests never import ``bench/`` (what a test and a bench share lives in ``ingestd.testing``)."""
    scripts = {path.stem for path in (ROOT / "bench").glob("*.py")}
    found = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] in scripts]
    assert found == []
