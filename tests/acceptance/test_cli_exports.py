"""``ingestd result <id> --format srt|vtt|txt`` against a running ``ingestd serve``: an audio job's transcript as
subtitles a real parser reads, and a readable error for a format the server does not write."""

from __future__ import annotations

import io
import json
from pathlib import Path

import srt
import webvtt
from server_process import Served, ingestd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cli(served: Served, *args: str) -> tuple[int, str, str]:
    done = ingestd(*args, "--url", served.server.url, "--api-key", served.keys["acme"], timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_result_as_subtitles_and_text(served: Served) -> None:
    code, out, err = _cli(served, "submit", "audio", str(EXAMPLES / "voice-memo.flac"), "--follow")
    assert code == 0, err
    [conversation] = json.loads(out)["conversations"]
    job_id = next(line.split()[1] for line in err.splitlines() if line.startswith("job "))

    code, out, err = _cli(served, "result", job_id, "--format", "srt")
    assert code == 0, err
    cues = list(srt.parse(out))
    assert [c.content.split(": ", 1)[1] for c in cues] == [s["text"] for s in conversation["transcript"]]
    assert all(c.content.startswith("Speaker ") for c in cues)

    code, out, err = _cli(served, "result", job_id, "--format", "vtt")
    assert code == 0, err
    assert [c.text for c in webvtt.from_buffer(io.StringIO(out))] == [s["text"] for s in conversation["transcript"]]

    code, out, err = _cli(served, "result", job_id, "--format", "txt")
    assert code == 0 and "milk" in out and out.startswith("# "), err

    code, out, err = _cli(served, "result", job_id, "--format", "docx")
    assert code == 1 and "422" in err and out == "", err
