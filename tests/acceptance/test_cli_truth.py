"""The CLI tells the truth: a live bar at the finished-item count, a failed or partial job's problem on stderr
with exit status 1, the pipelines when one is misspelt, the URL when the server is down, plain flags, a version."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from server_process import Served, ingestd
from workers import free_port

from ingestd.api import console
from ingestd.client import Client


def _cli(served: Served, *args: str) -> tuple[int, str, str]:
    done = ingestd(*args, "--url", served.server.url, "--api-key", served.keys["acme"])
    return done.returncode, done.stdout, done.stderr


def test_the_live_bar_shows_the_finished_item_count(served: Served, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    screen = io.StringIO()
    term = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with Client(served.server.url, api_key=served.keys["acme"]) as client:
        job = client.submit("gated", {"items": 4, "open": [0, 1, 2], "gate": str(gate)})
        followed = threading.Thread(target=console.follow, args=(client, job), kwargs={"console": term})
        followed.start()
        try:
            deadline = time.monotonic() + 15
            while "3/4" not in screen.getvalue():  # the bar redraws ~10 times a second
                assert time.monotonic() < deadline, f"the bar never showed 3/4: {screen.getvalue()[-300:]!r}"
                time.sleep(0.05)
        finally:
            gate.touch()
            followed.join(timeout=30)
    assert "4/4" in screen.getvalue() and "succeeded" in screen.getvalue()


def test_submit_follow_on_a_failed_job_prints_the_problem_and_exits_1(served: Served) -> None:
    code, out, err = _cli(served, "submit", "gated", "--input", '{"fail_stage": true}', "--follow")
    assert code == 1
    assert "failed at stage check: PermanentError: the recording is not audio" in err
    assert json.loads(out)["status"] == "failed"  # stdout stays the job's JSON for scripts
    code, out, _ = _cli(served, "jobs", "--status", "failed", "--pipeline", "gated", "--limit", "1")
    assert code == 0 and "check: PermanentError: the recording is not audio" in out  # the table's error column


def test_submit_follow_on_a_partial_job_lists_the_failed_items_and_exits_1(served: Served) -> None:
    body = json.dumps({"items": 3, "seconds": 0, "fail": [1]})
    code, out, err = _cli(served, "submit", "demo", "--input", body, "--follow")
    assert code == 1
    assert "partial: 1 item(s) failed" in err and "work[1]: PermanentError: item 1 was asked to fail" in err
    assert "3/3" in err  # the bar ends at how far the map got, not at the later 'collect' stage's 0
    assert json.loads(out)["failed"] == [1]


def test_cli_rough_edges(served: Served) -> None:
    code, _, err = _cli(served, "submit", "nosuch")
    assert code == 1 and "404" in err and "pipelines on this server: " in err and "demo" in err
    down = f"http://127.0.0.1:{free_port()}"
    done = ingestd("status", "01nosuchjob", "--url", down)
    assert done.returncode == 1 and f"cannot reach {down}" in done.stderr, done.stderr
    assert ingestd("--version").stdout.startswith("ingestd 0.")
    helped = ingestd("submit", "--help").stdout
    assert "--follow" in helped and "<bool>" not in helped
    sim_help = ingestd("sim", "--help").stdout
    assert "--no-auth" in sim_help and "--port" in sim_help


def test_serve_on_a_busy_port_exits_non_zero_with_the_hint_before_claiming_to_serve(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = ingestd("serve", "--port", str(port), "--database", f"sqlite:///{tmp_path}/ingestd.db")
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr and "INGESTD_PORT" in done.stderr
    assert "http://" not in done.stderr + done.stdout  # never said it was serving


def test_the_bar_eta_counts_down_at_the_jobs_own_pace() -> None:
    """8 of 16 items took 8 s: 4 s after that count arrived, 4 s are left; past 16 s it is unknown, not 0."""
    progress = Progress(console=Console(file=io.StringIO()))
    column = console._PaceColumn()
    counted = progress.add_task("work", total=16, completed=8, took=8.0, arrived=time.monotonic() - 4)
    assert column.render(progress.tasks[counted]).plain == "0:00:04"
    late = progress.add_task("work", total=16, completed=8, took=8.0, arrived=time.monotonic() - 9)
    assert column.render(progress.tasks[late]).plain == "-:--:--"
