"""A full disk and a store outage answer 503 with ``Retry-After``, and ``/readyz`` goes red (issue 15, point 5).

The full disk is real: ``ingestd serve`` runs in its own mount namespace (``unshare``) with its SQLite database
and blobs on a 4 MB tmpfs, which the test fills through ``/proc/<pid>/root`` and empties again. The outage is a
PostgreSQL database dropped under a running app.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from api_support import ApiFactory, assert_problem
from workers import FAST_API, free_port, ingestd_env, wait_healthy

TESTS = Path(__file__).parent.parent
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def _namespaces_work() -> bool:
    try:
        return subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def server_on_tmpfs(disk: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``ingestd serve`` with its SQLite database on a 4 MB tmpfs mounted at ``disk`` (seen only by the server)."""
    port = free_port()
    script = 'mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" -m ingestd.cli serve --port "$3" --database "$4"'
    database = f"sqlite:///{disk}/db/ingestd.db"
    env = ingestd_env({**FAST_API, "ready_require_worker": False}, TESTS / "integration")
    with open(log, "wb") as out:
        args = [*UNSHARE, "sh", "-c", script, "sh", str(disk), sys.executable, str(port), database]
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the disk is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.skipif(not _namespaces_work(), reason="unshare cannot make a user and mount namespace here")
def test_a_full_disk_answers_503_with_retry_after_and_readyz_goes_red(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with server_on_tmpfs(disk, tmp_path / "serve.log") as (url, proc), httpx.Client(base_url=url, timeout=30) as api:
        assert api.post("/v1/pipelines/demo/jobs", json={"items": 1, "seconds": 0}).status_code == 202
        assert api.get("/readyz").status_code == 200
        filler = Path(f"/proc/{proc.pid}/root{disk}/filler")
        fill(filler)
        upload = {"f": ("a.bin", os.urandom(200_000))}
        assert_unavailable(api.post("/v1/pipelines/checksum/jobs", files=upload))
        answers = [api.post("/v1/pipelines/demo/jobs", json={"items": 1, "seconds": 0}) for _ in range(10)]
        assert {r.status_code for r in answers} <= {202, 503}  # never a 500
        for response in answers:
            if response.status_code == 503:
                assert_unavailable(response)
        ready = api.get("/readyz")
        assert_unavailable(ready)
        assert ready.json()["checks"]["store_writes"]["ok"] is False
        assert "No space left" in ready.json()["checks"]["store_writes"]["error"]
        filler.unlink()
        deadline = time.monotonic() + 30
        while api.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "readyz stayed red after space came back"
            time.sleep(0.1)
        assert api.post("/v1/pipelines/checksum/jobs", files=upload).status_code == 202


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite's case is the full disk above
async def test_a_store_outage_answers_503_with_retry_after(api_factory: ApiFactory, database_url: str) -> None:
    api = await api_factory(run_worker=False)
    base, name = database_url.rsplit("/", 1)
    admin = await asyncpg.connect(base + "/postgres")
    try:  # every pooled connection is cut, and no new one can be made
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()
    response = await api.post("/v1/pipelines/demo/jobs", json={"items": 1})
    problem = assert_problem(response, 503, "store-unavailable")
    assert int(response.headers["retry-after"]) >= 1 and problem["retry_after"] >= 1
    ready = await api.get("/readyz")
    assert_problem(ready, 503, "not-ready")
    assert ready.json()["checks"]["store_writes"]["ok"] is False
