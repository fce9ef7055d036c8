"""The dashboard at /ui, in headless Chromium against a real server: what an operator sees.

A running job's page draws its waterfall and keeps adding rows as fan-out items start; the jobs table updates
live and its pipeline and status filters narrow it; a job can be canceled from its page; a server with API keys
asks for one and shows that tenant's jobs only. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from dashboard_support import create_key, extract_examples, running_server
from playwright.sync_api import expect

ITEMS = 10  # demo items, 2 at a time, 1 s each: about 5 s of running to watch


def submit(server: str, pipeline: str, body: dict[str, Any], key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.post(f"{server}/v1/pipelines/{pipeline}/jobs", json=body, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def item_rows(page: Any) -> int:
    count: int = page.locator("#waterfall .wf-row.item").count()
    return count


def test_running_job_waterfall_appears_and_grows(server: str, page: Any, artifacts: Path) -> None:
    job = submit(server, "demo", {"items": ITEMS, "seconds": 1.0, "concurrency": 2})
    page.goto(f"{server}/ui/#/jobs/{job}")

    expect(page.locator("#job-id")).to_have_text(job)
    expect(page.locator("#waterfall .wf-row.item").first).to_be_visible(timeout=10_000)
    first_seen = item_rows(page)
    expect(page.locator("#job-status")).to_have_text("running")
    expect(page.locator('#waterfall .wf-row[data-key="queue"] .wf-label')).to_have_text("queue wait")
    expect(page.locator('#waterfall .wf-row[data-key="prepare"]')).to_have_attribute("data-state", "ok")
    page.screenshot(path=str(artifacts / "dashboard-job-running.png"), full_page=True)

    # While it runs, the page polls and new items get rows (with a bar each) without a reload.
    page.wait_for_function(
        "n => document.querySelectorAll('#waterfall .wf-row.item').length > n", arg=first_seen, timeout=15_000
    )
    assert first_seen < ITEMS, f"the page first showed {first_seen} item rows: the job was already done"

    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    items = page.locator("#waterfall .wf-row.item")
    expect(items).to_have_count(ITEMS)
    expect(page.locator("#waterfall .wf-row.item .wf-seg.ok")).to_have_count(ITEMS)
    expect(page.locator("#waterfall .wf-group")).to_have_text(f"work \u00d7 {ITEMS}")
    expect(page.locator('#waterfall .wf-row[data-key="collect"]')).to_have_attribute("data-state", "ok")
    expect(page.locator("#job-facts")).to_contain_text(f"work {ITEMS}/{ITEMS}")
    expect(page.locator("#result")).to_contain_text('"ok": [')
    page.screenshot(path=str(artifacts / "dashboard-job-finished.png"), full_page=True)


def test_failed_item_is_red_and_the_job_shows_partial(server: str, page: Any) -> None:
    job = submit(server, "demo", {"items": 3, "seconds": 0.1, "fail": [1]})
    page.goto(f"{server}/ui/#/jobs/{job}")

    expect(page.locator("#job-status")).to_have_text("partial", timeout=20_000)
    expect(page.locator('#waterfall .wf-row[data-key="work[1]"]')).to_have_attribute("data-state", "failed")
    expect(page.locator('#waterfall .wf-row[data-key="work[1]"] .wf-mark.failed')).to_have_attribute(
        "title", re.compile("item 1 was asked to fail")
    )
    expect(page.locator('#waterfall .wf-row[data-key="work[0]"]')).to_have_attribute("data-state", "ok")
    # the result lists the failed item with its reason; clicking it opens the step's detail
    failed = page.locator("#result .failed-items li")
    expect(failed).to_have_text(["work[1] PermanentError: item 1 was asked to fail"])
    failed.get_by_role("button").click()
    expect(page.locator("#step-detail")).to_have_attribute("data-key", "work[1]")
    expect(page.locator("#step-detail li.failed")).to_contain_text("item 1 was asked to fail")


def row(page: Any, job: str) -> Any:
    return page.locator(f'#jobs-body tr[data-job="{job}"]')


def test_jobs_table_is_live_and_filters(tmp_path: Path, page: Any, artifacts: Path) -> None:
    with running_server(tmp_path) as server:
        check_jobs_table(server, page, artifacts)


def check_jobs_table(server: str, page: Any, artifacts: Path) -> None:
    page.goto(f"{server}/ui/")
    expect(page.locator("#jobs-count")).to_have_text("0 jobs")

    demo = submit(server, "demo", {"items": 2, "seconds": 0.2})
    noop = submit(server, "noop", {})
    partial = submit(server, "demo", {"items": 2, "seconds": 0.1, "fail": [0]})

    # No reload: the table picks the jobs up and their status changes as they finish.
    expect(row(page, demo).locator(".status")).to_have_text("succeeded", timeout=20_000)
    expect(row(page, noop).locator(".status")).to_have_text("succeeded", timeout=20_000)
    expect(row(page, partial).locator(".status")).to_have_text("partial", timeout=20_000)
    expect(page.locator("#jobs-count")).to_have_text("3 jobs")

    page.select_option("#f-pipeline", "noop")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    expect(row(page, noop)).to_be_visible()

    page.select_option("#f-pipeline", "demo")
    expect(page.locator("#jobs-body tr")).to_have_count(2)
    page.select_option("#f-status", "partial")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    expect(row(page, partial)).to_be_visible()
    page.select_option("#f-status", "failed")
    expect(page.locator("#jobs-body tr")).to_have_count(0)
    expect(page.locator("#jobs-count")).to_have_text("0 jobs")

    # The charts are redrawn for the filter: demo jobs finished this minute, one succeeded and one partial.
    page.select_option("#f-status", "")
    expect(page.locator('#chart-throughput rect[data-status="succeeded"]')).to_have_count(1)
    expect(page.locator('#chart-throughput rect[data-status="partial"]')).to_have_count(1)
    expect(page.locator('#queues .card[data-pipeline="demo"]')).to_have_count(0)  # nothing queued or running
    page.screenshot(path=str(artifacts / "dashboard-jobs.png"), full_page=True)

    row(page, partial).locator("a").click()
    expect(page.locator("#job-id")).to_have_text(partial)
    expect(page.locator("#job-status")).to_have_text("partial")


def test_a_large_fan_out_is_summarised_until_expanded(server: str, page: Any) -> None:
    job = submit(server, "demo", {"items": 80, "seconds": 0, "fail": [7], "concurrency": 20})
    page.goto(f"{server}/ui/#/jobs/{job}")

    expect(page.locator("#job-status")).to_have_text("partial", timeout=20_000)
    summary = page.locator('#waterfall .wf-row.summary[data-group="work"]')
    expect(summary).to_contain_text("79 ok")
    expect(summary).to_contain_text("1 failed")
    expect(page.locator("#waterfall .wf-row.item")).to_have_count(0)

    page.get_by_role("button", name="show all 80").click()
    expect(page.locator("#waterfall .wf-row.item")).to_have_count(80)
    page.get_by_role("button", name="collapse").click()
    expect(page.locator("#waterfall .wf-row.item")).to_have_count(0)


def test_cancel_from_the_job_page(server: str, page: Any) -> None:
    job = submit(server, "demo", {"items": 20, "seconds": 1.0, "concurrency": 1})
    page.goto(f"{server}/ui/#/jobs/{job}")
    expect(page.locator("#job-status")).to_have_text("running", timeout=10_000)

    page.locator("#cancel").click()
    expect(page.locator("#job-status")).to_have_text("canceled", timeout=20_000)
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#result-title")).to_have_text("error")
    assert httpx.get(f"{server}/v1/jobs/{job}", timeout=10).json()["status"] == "canceled"


def test_a_server_with_keys_asks_for_one_and_shows_only_that_tenants_jobs(tmp_path: Path, page: Any) -> None:
    acme, other = create_key(tmp_path, "acme"), create_key(tmp_path, "other")
    with running_server(tmp_path) as url:
        mine = submit(url, "noop", {}, key=acme)
        theirs = submit(url, "noop", {}, key=other)
        page.goto(f"{url}/ui/")
        expect(page.locator("#banner")).to_contain_text("needs an API key")
        expect(page.locator("#jobs-body tr")).to_have_count(0)

        page.once("dialog", lambda dialog: dialog.accept(acme))
        page.locator("#key-button").click()
        expect(row(page, mine).locator(".status")).to_have_text("succeeded", timeout=20_000)
        expect(page.locator("#banner")).to_be_hidden()
        expect(row(page, theirs)).to_have_count(0)
        check_workers_name_only_the_tenants_jobs(url, acme, other)


def check_workers_name_only_the_tenants_jobs(url: str, acme: str, other: str) -> None:
    """``GET /v1/workers`` names a running job to its tenant only; another tenant sees the worker busy."""
    slow = submit(url, "demo", {"items": 20, "seconds": 1.0, "concurrency": 1}, key=acme)

    def workers(key: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{url}/v1/workers", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["workers"]
        return found

    for _ in range(100):  # the next heartbeat (every 2 s) counts the lease
        mine = workers(acme)
        if mine and mine[0]["jobs"] == 1 and mine[0]["running"]:
            break
        time.sleep(0.1)
    assert [j["id"] for j in mine[0]["running"]] == [slow], mine
    theirs = workers(other)
    assert [(w["id"], w["jobs"], w["running"]) for w in theirs] == [(mine[0]["id"], 1, [])]
    httpx.post(f"{url}/v1/jobs/{slow}/cancel", headers={"Authorization": f"Bearer {acme}"}, timeout=10)


def test_usage_and_result_of_a_finished_job(tmp_path: Path, page: Any) -> None:
    extract_examples(tmp_path)  # the wordcount pipeline of docs/pipelines/writing.md records usage
    env = {"PYTHONPATH": str(tmp_path), "INGESTD_PIPELINE_MODULES": '["wordcount:WORDCOUNT"]'}
    with running_server(tmp_path, **env) as url:
        job = submit(url, "wordcount", {"documents": ["a b a", "c a", "d"]})
        page.goto(f"{url}/ui/#/jobs/{job}")
        expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)

        usage = page.locator("#usage table")
        expect(usage.locator("th")).to_have_text(["", "tokens in"])
        expect(usage.locator("tr.provider")).to_have_text("provider tokenizer6")
        expect(usage.locator("tr.stage")).to_have_text("count · tokenizer6")
        expect(usage.locator("tr.total")).to_have_text("total6")
        expect(page.locator("#result")).to_contain_text('"documents": 3')


def test_retries_and_limiter_waits_are_marked_on_the_waterfall(server: str, page: Any, artifacts: Path) -> None:
    flaky = submit(server, "flaky", {"failures": 2})
    page.goto(f"{server}/ui/#/jobs/{flaky}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)
    retries = page.locator('#waterfall .wf-row[data-key="fetch"] .wf-mark.retry')
    expect(retries).to_have_count(2)
    expect(retries.first).to_have_attribute("title", re.compile("attempt 1 failed: .*provider hiccup 1"))

    limited = submit(server, "limited", {"items": 3, "seconds": 0.3})
    page.goto(f"{server}/ui/#/jobs/{limited}")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=20_000)
    # one call at a time: two of the three items waited for the slot, the last for at least one whole 0.3 s call of
    # another (about 0.6 s: the marks' tooltips say how long; even the first call's uncontended slot takes a few
    # milliseconds to get). No upper bound: how much longer a loaded machine takes is not the limiter's doing.
    waits = page.locator("#waterfall .wf-row.item .wf-mark.limiter")
    expect(waits).to_have_count(3)
    titles = [waits.nth(i).get_attribute("title") or "" for i in range(3)]
    seconds = sorted(float(re.findall(r"waited ([0-9.]+) s", title)[0]) for title in titles)
    assert seconds[0] < seconds[1] < seconds[2] and seconds[2] >= 0.3, titles
    expect(page.locator("#usage tr.total")).to_contain_text("3")  # three calls
    page.screenshot(path=str(artifacts / "dashboard-job-limiter.png"), full_page=True)
