"""One user's sessions apply in submission order while other users run; a worker killed in ``extract`` costs
at most the episode in flight. Extraction goes to the provider simulator (OpenAI-compatible chat on loopback)
whose per-request-key counters show which episodes were extracted, and how often."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from memory_support import FAST, api_client, fast_settings, job_done, post_session, running_worker, session, submit
from memory_support import wait_finished as wait_job
from workers import WorkerProcess, ingestd_env, wait_until

from ingestd.pipelines.memory import MemoryProviders
from ingestd.pipelines.memory.embedder import HashingEmbedder
from ingestd.pipelines.memory.extract import LLMExtractor
from ingestd.providers.openai_compat import OpenAIChat
from ingestd.sim.testing import API_KEY, SimulatorURL, provider_settings, running_simulator
from ingestd.store.protocol import JobStore

CHAT_SECONDS = 0.15


@pytest.fixture
def sim() -> Iterator[SimulatorURL]:
    fixed = {"median_seconds": CHAT_SECONDS, "p95_seconds": CHAT_SECONDS}
    with running_simulator({"routes": {"chat": fixed}}) as url:
        yield url


def _session(user: str, session_id: str, turns: int, at: str = "2026-03-01T10:00:00+00:00") -> dict[str, Any]:
    lines = [f"{user} talked about project {session_id}-{i} with Emma Schmidt in Lisbon." for i in range(turns)]
    return session(user, session_id, at, *lines)


def _when(job: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(job[field])


async def test_one_users_sessions_apply_in_order_while_another_user_runs(store: JobStore, sim: SimulatorURL) -> None:
    chat = OpenAIChat(sim.openai_base_url, API_KEY, "sim-chat", timeout=30)
    providers = MemoryProviders(LLMExtractor(chat), HashingEmbedder())
    async with api_client(store, fast_settings(store.url), providers) as client:
        alice = [await post_session(client, _session("alice", f"a{i}", 6)) for i in range(3)]
        bob = await post_session(client, _session("bob", "b0", 6))
        jobs = [await job_done(client, i) for i in [*alice, bob]]
        results = [(await client.get(f"/v1/jobs/{j['id']}/result")).json() for j in jobs]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4, [j.get("error") for j in jobs]
    a0, a1, a2, b0 = jobs
    # Alice's sessions ran one at a time, in the order submitted: each started after the previous one finished.
    assert _when(a0, "finished_at") <= _when(a1, "started_at")
    assert _when(a1, "finished_at") <= _when(a2, "started_at")
    # Bob's session did not queue behind Alice's: it started before her last one could.
    assert _when(b0, "started_at") < _when(a2, "started_at")
    assert [r["graph"]["applied"] for r in results] == [True] * 4
    assert {k.split(":")[0] for k in sim.state.route_keys["chat"]} == {j["id"] for j in jobs}


async def test_a_worker_killed_during_extract_costs_at_most_the_episode_in_flight(
    store: JobStore, sim: SimulatorURL, tmp_path: Path
) -> None:
    # One chat call at a time fleet-wide, so "the episode in flight" is one episode; the dead worker's slot and
    # lease free up after 2 s.
    limits = {"provider_limits": {"openai": {"concurrency": 1}}, "limiter_lease_seconds": 2.0}
    hosted = {**provider_settings(sim, stt="offline", vad="offline", embedding="offline"), **limits}
    env = ingestd_env({**FAST, **hosted})
    job = await submit(store, _session("carol", "c0", 32))  # 8 episodes of 4 turns
    chat = sim.state.routes["chat"]
    doomed = WorkerProcess(store.url, tmp_path, "doomed", env)

    async def started() -> bool:
        return chat.calls >= 3 or doomed.proc.poll() is not None

    try:
        await wait_until(started, timeout=60, what="extraction to start", interval=0.01)
        assert doomed.proc.poll() is None, doomed.output()
    finally:
        doomed.stop()  # SIGKILL
    before = dict(sim.state.route_keys["chat"])
    # The resuming worker's own lease need not run out fast (nobody takes over from it): with FAST's 2 s, a loaded
    # machine's late heartbeats let its own claim take the job again, and the call in flight was made twice.
    async with running_worker(store, fast_settings(store.url, **hosted, lease_seconds=30)):
        done = await wait_job(store, job.id)
    assert done.status == "succeeded", done.error
    assert done.result is not None and done.result["episodes"] == 8 and done.result["episodes_failed"] == 0
    calls = sim.state.route_keys["chat"]
    assert set(calls) == {f"{job.id}:extract[{i}]" for i in range(8)}  # every episode extracted
    repeated = {k: n for k, n in calls.items() if n > 1}
    assert len(repeated) <= 1 and all(n == 2 for n in repeated.values()), calls  # only the one in flight, once
    assert set(repeated) <= set(before), "only an episode the killed worker had started may be extracted again"


async def test_provider_errors_are_retried_or_reported_per_episode(store: JobStore, sim: SimulatorURL) -> None:
    chat = OpenAIChat(sim.openai_base_url, API_KEY, "sim-chat", timeout=30)
    providers = MemoryProviders(LLMExtractor(chat), HashingEmbedder())
    sim.configure({"routes": {"chat": {"fail_first_per_key": 1, "fail_first_status": 503}}})
    async with api_client(store, fast_settings(store.url), providers) as client:
        flaky = await job_done(client, await post_session(client, _session("dora", "d0", 8)))
        sim.configure({"routes": {"chat": {"fail_first_per_key": 0, "malformed_rate": 1.0}}})
        broken = await job_done(client, await post_session(client, _session("dora", "d1", 8)))
        result = (await client.get(f"/v1/jobs/{broken['id']}/result")).json()
    calls = sim.state.route_keys["chat"]
    assert flaky["status"] == "succeeded"  # a 503 is retried...
    assert sorted(n for k, n in calls.items() if k.startswith(flaky["id"])) == [2, 2]  # ...once per episode
    assert broken["status"] == "partial", broken  # a garbled answer fails its episode, named, not the worker
    assert result["episodes_failed"] == 2 and result["graph"]["applied"] is True
    failures = result["failed_items"]
    assert [f["key"] for f in failures] == ["extract[0]", "extract[1]"], failures
    assert all("not JSON" in f["error"]["detail"] for f in failures), failures  # the reason, for a human
