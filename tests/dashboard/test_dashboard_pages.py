"""The dashboard's pages beyond the waterfall, in headless Chromium against a real server: job search with the
error column, a step's detail on click, an audio-shaped transcript drawn as speaker turns, the workers page and
the memory browser (the real memory pipeline, offline extraction). Screenshots land in ``test-artifacts/``;
``INGESTD_DOCS_IMG=docs/img`` also writes the docs' ``dashboard-*.png``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect
from test_dashboard import row, submit

DOCS_IMG = os.environ.get("INGESTD_DOCS_IMG")
TALK = [
    ["speaker_1", "Shall we move the launch to Thursday?"],
    ["speaker_2", "Thursday works if QA signs off on Wednesday."],
    ["speaker_2", "I will ask them today."],
    ["speaker_1", "Great, then Thursday it is."],
]
MARCH = {
    "user_id": "alice",
    "session_id": "s1",
    "reference_time": "2026-03-01T10:00:00+00:00",
    "messages": [
        {"role": "user", "content": "My friend Emma Schmidt lives in Lisbon and works at Stripe.",
         "timestamp": "2026-03-01T10:00:00+00:00"},
        {"role": "user", "content": "Tom Becker lives in Berlin.", "timestamp": "2026-03-01T10:00:00+00:00"},
    ],
}  # fmt: skip
JUNE = {
    "user_id": "alice",
    "session_id": "s2",
    "reference_time": "2026-06-01T10:00:00+00:00",
    "messages": [
        {
            "id": "june-1",
            "name": "Alice",
            "role": "user",
            "content": "Ms. Schmidt now lives in Porto.",
            "timestamp": "2026-06-01T10:00:00+00:00",
        }
    ],
}


def shoot(page: Any, artifacts: Path, name: str) -> None:
    """The whole page into ``artifacts``; with ``INGESTD_DOCS_IMG``, down to the shown view's end into the docs."""
    page.screenshot(path=str(artifacts / name), full_page=True)
    if DOCS_IMG:
        bottom = page.evaluate("document.querySelector('main:not([hidden])').getBoundingClientRect().bottom + scrollY")
        clip = {"x": 0, "y": 0, "width": 1300, "height": bottom + 8}
        page.screenshot(path=str(Path(DOCS_IMG) / name), full_page=True, clip=clip)


def submit_junk_audio(server: str) -> str:
    files = {"file": ("junk.wav", b"RIFF not really a wave file" * 40, "audio/wav")}
    answer = httpx.post(f"{server}/v1/pipelines/audio/jobs", files=files, timeout=10)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_search_finds_jobs_by_text_and_id_and_shows_the_error(server: str, page: Any, artifacts: Path) -> None:
    broken = submit_junk_audio(server)
    noop = submit(server, "noop", {})
    demo = submit(server, "demo", {"items": 2, "seconds": 0.1})
    page.goto(f"{server}/ui/")
    expect(row(page, broken).locator(".status")).to_have_text("failed", timeout=20_000)
    expect(row(page, demo).locator(".status")).to_have_text("succeeded", timeout=20_000)
    # the error column names the stage and the reason; dates come with the day
    expect(row(page, broken).locator("td.error")).to_have_text(re.compile(r"^decode: .*not a readable audio file"))
    expect(row(page, noop).locator("td").nth(5)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))

    page.fill("#f-search", "readable audio")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    expect(row(page, broken)).to_be_visible()
    expect(page.locator("#jobs-count")).to_contain_text("1 of")
    shoot(page, artifacts, "dashboard-jobs-search.png")

    # the search is in the URL: a reload (or a shared link) shows the same jobs
    assert page.url.endswith("#/?q=readable+audio"), page.url
    page.reload()
    expect(page.locator("#f-search")).to_have_value("readable audio")
    expect(page.locator("#jobs-body tr")).to_have_count(1)

    page.fill("#f-search", noop)
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    expect(row(page, noop)).to_be_visible()
    page.fill("#f-search", "demo succeeded")
    expect(row(page, demo)).to_be_visible()
    expect(row(page, broken)).to_have_count(0)
    page.fill("#f-search", "no such thing anywhere")
    expect(page.locator("#jobs-body tr")).to_have_count(0)
    expect(page.locator("#jobs-empty")).to_be_visible()

    # the charts over the last 5 minutes in 5 s buckets: the three jobs finished within them
    page.select_option("#f-window", "300/5")
    page.select_option("#f-pipeline", "audio")  # the server is shared: other modules' jobs finished meanwhile
    expect(page.locator("#throughput-caption")).to_have_text("finished per 5 s, last 5 min")
    expect(page.locator("#chart-throughput rect[data-status=failed]")).to_have_count(1)
    page.select_option("#f-pipeline", "")

    page.fill("#f-search", "")
    page.locator("h1, #queues").first.click()  # "/" from outside the box comes back to it
    page.keyboard.press("/")
    expect(page.locator("#f-search")).to_be_focused()
    row(page, broken).locator("a").click()
    expect(page.locator("#job-error")).to_contain_text("decode: PermanentError")
    expect(page.locator("#input")).to_contain_text("junk.wav")


def test_a_step_shows_its_attempts_and_errors_on_click(server: str, page: Any) -> None:
    flaky = submit(server, "flaky", {"failures": 2})
    page.goto(f"{server}/ui/#/jobs/{flaky}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)
    page.locator('#waterfall .wf-row[data-key="fetch"]').click()
    detail = page.locator("#step-detail")
    expect(detail).to_have_attribute("data-key", "fetch")
    expect(detail.locator("ul.marks li.retry")).to_have_count(2)
    expect(detail.locator("ul.marks li.retry").first).to_contain_text("provider hiccup 1")
    expect(detail).to_contain_text("3 tries in all")  # one run of the step, retried twice in place
    expect(detail.locator("table.attempts tr.ok")).to_have_count(1)
    detail.get_by_role("button", name="close").click()
    expect(detail).to_be_hidden()


def test_an_audio_result_is_drawn_as_speaker_turns(server: str, page: Any, artifacts: Path) -> None:
    job = submit(server, "talk", {"lines": TALK})
    page.goto(f"{server}/ui/#/jobs/{job}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#result")).to_have_attribute("data-kind", "transcript")
    turns = page.locator("#result .turn")
    # consecutive lines of one speaker are one turn
    expect(turns).to_have_count(3)
    expect(turns.locator("b")).to_have_text(["Speaker 1", "Speaker 2", "Speaker 1"])
    expect(turns.nth(1)).to_contain_text("QA signs off on Wednesday. I will ask them today.")
    expect(turns.locator(".at")).to_have_text(["00:00", "00:03", "00:09"])
    colours = [turns.nth(i).get_attribute("style") for i in range(3)]
    assert colours[0] == colours[2] != colours[1], colours
    expect(page.locator("#result svg.lanes rect")).to_have_count(4)
    expect(page.locator("#result .conversation h3")).to_contain_text("Planning call")
    shoot(page, artifacts, "dashboard-transcript.png")


def test_workers_page_shows_the_worker_and_its_running_job(server: str, page: Any, artifacts: Path) -> None:
    job = submit(server, "demo", {"items": 6, "seconds": 1.0, "concurrency": 1})
    page.goto(f"{server}/ui/#/workers")
    worker = page.locator("#workers-body tr")
    expect(worker).to_have_count(1)
    expect(worker.locator(".dot.on")).to_be_visible()
    expect(worker.locator(f'li[data-job="{job}"]')).to_contain_text("demo", timeout=10_000)
    expect(worker.locator("td").nth(1)).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((just now|.* ago)\)$")
    )
    expect(worker.locator("td.num")).to_have_text("1", timeout=10_000)  # its next heartbeat counts the lease
    expect(worker.locator(f'li[data-job="{job}"]')).to_contain_text(re.compile(r"work [1-6]/6"), timeout=10_000)
    # the provider the test server limits to one call at a time, and what it has in flight now
    expect(page.locator('#providers tr[data-provider="slowapi"] td').nth(3)).to_have_text("1")
    shoot(page, artifacts, "dashboard-workers.png")
    httpx.post(f"{server}/v1/jobs/{job}/cancel", timeout=10)
    expect(worker.locator(f'li[data-job="{job}"]')).to_have_count(0, timeout=15_000)


def test_memory_browser_draws_the_graph_and_the_timeline(server: str, page: Any, artifacts: Path) -> None:
    jobs = []
    for session in (MARCH, JUNE):
        answer = httpx.post(
            f"{server}/v1/pipelines/memory/jobs", json=session, headers={"Prefer": "wait=60"}, timeout=90
        )
        assert answer.json()["status"] == "succeeded", answer.text
        jobs.append(answer.json()["id"])
    # a memory job's page lists the facts it added, its input as a conversation
    page.goto(f"{server}/ui/#/jobs/{jobs[1]}")
    expect(page.locator("#result")).to_have_attribute("data-kind", "memory")
    expect(page.locator("#result .fact")).to_have_count(1)
    expect(page.locator("#result .fact")).to_contain_text("Emma Schmidt lives in Porto 2026-06-01 → now")
    expect(page.locator("#input .msg")).to_have_text([re.compile("Ms. Schmidt now lives in Porto.")])
    expect(page.locator("#input .msg .who")).to_have_text(["Alice"])  # the speaker's name, not only its role
    expect(page.locator("#input .msg")).to_contain_text("june-1")
    page.goto(f"{server}/ui/#/memory")
    page.locator('#memory-users li[data-user="alice"] a').click()
    graph = page.locator("#memory-graph")
    for name in ("Emma Schmidt", "Lisbon", "Porto", "Stripe", "Tom Becker"):
        expect(graph.locator(".node text", has_text=name)).to_have_count(1)
    # Lisbon ended when Porto began: a dashed edge and a greyed timeline row
    expect(graph.locator("line.edge.past")).to_have_count(1)
    past = page.locator(".memory-timeline .tl-row.past")
    expect(past).to_have_count(1)
    expect(past).to_contain_text("2026-03-01 Emma Schmidt lives in Lisbon")
    expect(page.locator(".memory-timeline .tl-row.current", has_text="Porto")).to_contain_text("2026-06-01")

    graph.locator(".node", has_text="Emma Schmidt").click()
    detail = page.locator("#entity-detail")
    expect(detail.locator("h3")).to_contain_text("Emma Schmidt")
    expect(detail.locator(".fact")).to_have_count(3)
    expect(detail.locator(".fact.past")).to_contain_text("Lisbon")
    # as of a day: the facts that held then, Lisbon in April, Porto in July
    page.fill("#m-asof", "2026-04-01")
    expect(graph.locator("line.edge")).to_have_count(3)
    expect(graph.locator("line.edge.past")).to_have_count(0)
    expect(graph.locator("line.edge title", has_text="Lisbon")).to_have_count(1)
    page.fill("#m-asof", "2026-07-01")
    expect(graph.locator("line.edge title", has_text="Lisbon")).to_have_count(0)
    expect(graph.locator("line.edge title", has_text="Porto")).to_have_count(1)
    page.fill("#m-asof", "")
    expect(graph.locator("line.edge")).to_have_count(4)

    # the sessions, newest first, each opening on its messages
    sessions = page.locator("#memory-sessions details.session")
    expect(sessions).to_have_count(2)
    expect(sessions.first).to_have_attribute("data-session", "s2")
    sessions.nth(1).locator("summary").click()
    expect(sessions.nth(1).locator(".msg")).to_have_count(2)
    expect(sessions.nth(1).locator(".msg").first).to_contain_text("Emma Schmidt lives in Lisbon")
    shoot(page, artifacts, "dashboard-memory.png")


def test_a_failed_job_is_retried_from_its_page(server: str, page: Any) -> None:
    # the step fails 7 times, 5 tries per run: the first run fails, the retry's third try succeeds
    job = submit(server, "flaky", {"failures": 7})
    page.goto(f"{server}/ui/#/jobs/{job}")
    expect(page.locator("#job-status")).to_have_text("failed", timeout=20_000)
    expect(page.locator("#job-error")).to_contain_text("provider hiccup 5")
    page.locator("#job-retry button.retry").click()
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#job-retry button")).to_have_count(0)
    assert httpx.get(f"{server}/v1/jobs/{job}", timeout=10).json()["status"] == "succeeded"
