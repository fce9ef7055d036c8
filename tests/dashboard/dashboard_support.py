"""Helpers of the dashboard tests: a real ingestd server (API + worker, SQLite) and Debian's headless Chromium.

The server is ``ingestd serve`` (API + worker in one process) as a subprocess on a free loopback port, on a
SQLite file in ``tmp_path``. The browser is the system's ``/usr/bin/chromium`` driven by playwright (never a
downloaded browser): where it is missing the tests skip with a clear message, unless ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from workers import free_port, wait_healthy

CHROMIUM = os.environ.get("INGESTD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DOC = Path(__file__).resolve().parents[2] / "docs" / "pipelines" / "writing.md"


def extract_examples(target: Path) -> None:
    """Write each ``<!-- example: NAME -->`` code block of docs/pipelines/writing.md to ``target/NAME``."""
    blocks = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert {name for name, _ in blocks} == {"wordcount.py", "try_wordcount.py"}
    for name, code in blocks:
        (target / name).write_text(code + "\n")


def database_url(tmp_path: Path) -> str:
    """The SQLite database of the server started in ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'ingestd.sqlite'}"


def ingestd(*args: str) -> list[str]:
    """The command line of ``ingestd ARGS`` with this interpreter."""
    return [sys.executable, "-m", "ingestd.cli", *args]


def create_key(tmp_path: Path, tenant: str) -> str:
    """``ingestd keys create --tenant TENANT`` on the database of the server in ``tmp_path``: the new key."""
    done = subprocess.run(
        ingestd("keys", "create", "--tenant", tenant, "--database", database_url(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def running_server(tmp_path: Path, **env: str) -> Iterator[str]:
    """``ingestd serve`` (API + worker) on a free loopback port and a SQLite file in ``tmp_path``, with ``env``
    added to the environment; yields its URL and stops it (SIGTERM) afterwards."""
    port = free_port()
    log = tmp_path / "server.log"
    full_env = {**os.environ, "INGESTD_DATABASE_URL": database_url(tmp_path), "INGESTD_HOST": "127.0.0.1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(ingestd("serve", "--port", str(port)), env=full_env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, timeout=30)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium_or_skip() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        message = (
            f"Chromium is not installed ({CHROMIUM} missing): `apt-get install -y chromium chromium-driver` "
            "(`make test` does it when run as root)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the dashboard tests must run)")
        pytest.skip(message)
    return path
