"""``pip install ./clients/python`` in a fresh venv installs httpx and what httpx needs, nothing of the server, and
that venv alone talks to a live server: a job, then a user's memory as prompt context."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from client_support import Live

ROOT = Path(__file__).parent.parent.parent
SCRIPT = """
import json, sys
from ingestd_client import Client
with Client(sys.argv[1], sys.argv[2]) as client:
    job = client.wait(client.submit("demo", {"items": 2, "seconds": 0.01}).id, deadline=60)
    block = client.memory.context("alice", "where does Emma live")
    print(json.dumps({"status": job.status, "result": client.result(job.id), "context": block["context"]}))
"""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.slow
def test_a_fresh_venv_gets_the_client_and_no_server_dependency(live: Live, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # this venv's pip installs into it (`pip --python`): no ensurepip run
    python = str(env_dir / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    installed = subprocess.run([*pip, "install", "--quiet", str(ROOT / "clients/python")], capture_output=True,
                               text=True, timeout=300)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    server = {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert names & server == {"httpx", "ingestd-client"}  # the server's other dependencies stay out
    assert {"ingestd", "torch", "fastapi", "sqlalchemy", "asyncpg"}.isdisjoint(names)
    ran = subprocess.run([python, "-c", SCRIPT, live.url, live.key], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["status"] == "succeeded" and answer["result"] == {"ok": [0, 1], "failed": []}
    assert "Lisbon" in answer["context"]
