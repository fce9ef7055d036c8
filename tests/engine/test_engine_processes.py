"""Worker processes as an operator runs them: SIGKILL mid-map, many workers competing, SIGTERM hand-over."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from engine_helpers import WorkerProcess, submit, wait_finished, wait_until
from engine_pipelines import lines

from ingestd.models import JobStatus
from ingestd.settings import Settings
from ingestd.store.protocol import JobStore

pytestmark = pytest.mark.slow
# The lease, heartbeat and poll an operator gets without configuring anything.
DEFAULT_LEASES = {k: Settings.model_fields[k].default for k in ("lease_seconds", "heartbeat_seconds", "poll_seconds")}


async def test_sigkill_mid_map_resumes_elsewhere_and_runs_each_finished_step_once(
    store: JobStore, tmp_path: Path
) -> None:
    log, gate = str(tmp_path / "log"), tmp_path / "gate"
    inp = {"log": log, "items": 6, "concurrency": 3, "gate": str(gate), "gate_from": 2}
    job = await submit(store, "count", inp)
    first = WorkerProcess(store.url, tmp_path, "first", **DEFAULT_LEASES)
    second = None
    try:

        async def midway() -> bool:  # work[0], work[1] checkpointed; work[2..4] running, stuck at the gate
            steps = await store.load_steps(job.id)
            started = sum(f"{job.id} try work[{i}]" in lines(log) for i in (2, 3, 4))
            return {"prepare", "work[0]", "work[1]"} <= set(steps) and started == 3

        await wait_until(midway, what="the map to be midway")
        first.signal(signal.SIGKILL)
        await first.wait()
        gate.touch()
        second = WorkerProcess(store.url, tmp_path, "second", **DEFAULT_LEASES)
        done = await wait_finished(store, job.id, timeout=30)  # default settings: the lease expires, a poll finds it
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result == {"ok": [0, 1, 2, 3, 4, 5], "failed": []}
    ends = Counter(line for line in lines(log) if " end " in line)
    keys = ["prepare", "collect", *(f"work[{i}]" for i in range(6))]
    assert {key: ends[f"{job.id} end {key}"] for key in keys} == dict.fromkeys(keys, 1)
    assert done.attempt == 2
    events = await store.read_events(job.id)
    starts = [(e.data.get("worker"), e.data.get("attempt")) for e in events if e.type == "job.started"]
    assert starts == [("first", 1), ("second", 2)]  # taken over once its lease expired: the attempt counted


async def test_workers_competing_for_jobs_run_each_exactly_once(store: JobStore, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    workers = [WorkerProcess(store.url, tmp_path, f"w{n}") for n in range(3)]
    try:

        async def all_alive() -> bool:
            return len(await store.live_workers(within_seconds=5)) == 3

        await wait_until(all_alive, what="three live workers")
        jobs = [await submit(store, "once", {"log": log, "seconds": 0.01, "tag": str(i)}) for i in range(60)]
        finished = [await wait_finished(store, job.id, timeout=60) for job in jobs]
    finally:
        for worker in workers:
            worker.stop()
    assert {j.status for j in finished} == {JobStatus.SUCCEEDED}
    runs = Counter(line.split()[0] for line in lines(log) if " run " in line)
    assert runs == Counter({job.id: 1 for job in jobs})
    owners = set()
    for job in jobs:
        started = [e for e in await store.read_events(job.id) if e.type == "job.started"]
        assert len(started) == 1
        owners.add(str(started[0].data.get("worker")))
    assert len(owners) >= 2  # they really competed


HANDOVER = ("job.started", "job.released")


async def test_sigterm_hands_running_jobs_over_at_once(store: JobStore, tmp_path: Path) -> None:
    log, gate = str(tmp_path / "log"), tmp_path / "gate"
    slow = {"lease_seconds": 30.0, "shutdown_grace_seconds": 0.3}  # a takeover by lease expiry would take 30 s
    first = WorkerProcess(store.url, tmp_path, "first", **slow)
    second = None
    job = await submit(store, "count", {"log": log, "items": 3, "gate": str(gate), "gate_from": 1})
    try:

        async def waiting_at_gate() -> bool:
            return f"{job.id} try work[2]" in lines(log) and f"{job.id} end work[0]" in lines(log)

        await wait_until(waiting_at_gate, what="the first worker to be inside the map")
        second = WorkerProcess(store.url, tmp_path, "second", **slow)

        async def second_alive() -> bool:
            return "second" in {w["id"] for w in await store.live_workers(within_seconds=5)}

        await wait_until(second_alive, what="the second worker to start")
        first.signal(signal.SIGTERM)
        assert await first.wait() == 0, first.output()

        async def taken_over() -> bool:
            job_now = await store.get_job(job.id)
            return job_now is not None and job_now.lease_owner == "second"

        # Well before the 30 s lease could expire (a takeover by expiry would also count a second attempt, below).
        await wait_until(taken_over, timeout=10, what="the second worker to take the job")
        gate.touch()
        done = await wait_finished(store, job.id, timeout=20)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert lines(log).count(f"{job.id} end work[0]") == 1
    events = await store.read_events(job.id)
    handover = [(e.type, e.data.get("worker"), e.data.get("attempt")) for e in events if e.type in HANDOVER]
    # Given back by the first worker at SIGTERM, not taken after its lease expired: the attempt was not counted.
    assert handover == [("job.started", "first", 1), ("job.released", "first", None), ("job.started", "second", 1)]
