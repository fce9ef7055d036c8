"""A short chaos run (5 SIGKILLs of worker processes on SQLite, an idempotency storm): nothing lost, no finished
step run twice, every job terminal. The full run (100 kills, both databases, a PostgreSQL restart) is
``bench/chaos.py``; both drive ``ingestd.testing.chaos``."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from ingestd.models import NewJob, Step, utcnow
from ingestd.store.protocol import JobStore
from ingestd.testing.chaos import Options, run_chaos
from ingestd.testing.chaos_tally import Report, tally_order, tally_steps

pytestmark = pytest.mark.slow

# A short lease keeps the test short; not shorter than 4 s, or a worker starved of CPU on a loaded machine loses its
# leases without being killed.
FAST = {"lease_seconds": 4.0, "heartbeat_seconds": 0.5, "poll_seconds": 0.2, "shutdown_grace_seconds": 0.5}


# Its own bound: the run is 5 kills and a drain of up to 90 s, and each kill waits for a restarted worker to come up,
# which takes several times longer on a loaded machine (10 kills took 120-220 s at load 7). Five kills prove what
# ten did (jobs resumed after a kill, none lost, no finished step run twice) at half the CI time; the counts that
# need many kills are bench/chaos.py's.
@pytest.mark.timeout(240)
async def test_five_sigkills_lose_no_job_and_rerun_no_finished_step(tmp_path: Path) -> None:
    options = Options(
        kills=5,
        kill_every=(1.0, 2.0),
        submit_every=0.1,
        storm_requests=40,
        storm_keys=4,
        time_scale=0.02,
        settings=FAST,
        drain_seconds=90.0,
    )
    report = await run_chaos(options, tmp_path)
    assert report.kills == 5
    assert report.resume_waits, "no kill hit a running job: the run proved nothing"
    assert report.provider_steps > 0
    assert report.jobs_lost == []
    assert report.never_resumed == []
    assert report.finished_steps_run_twice == []
    # A job whose worker was killed under it five times fails, saying so (lost leases count as attempts, so a
    # poison job stops); every other job succeeded.
    codes = {str(error["code"]) for error in report.failures.values()}
    assert codes <= {"attempts-exhausted"}, report.failures
    assert report.statuses.get("succeeded", 0) + len(report.failures) == report.jobs_accepted
    # The storm: 40 concurrent submissions under 4 keys made 4 jobs, and a different payload under a used key
    # is refused; no other surplus job appears in the store.
    assert report.storm["jobs_created"] == 4
    assert report.storm["conflicts_answered"] == {"422": 4}
    assert report.jobs_in_store == report.jobs_accepted
    # Jobs sharing an ordering key ran one at a time, in submission order, kills notwithstanding.
    assert report.ordered_jobs > 0
    assert report.order_violations == []


async def test_a_call_after_the_checkpoint_counts_as_a_finished_step_run_twice(store: JobStore) -> None:
    job = (await store.submit(NewJob(pipeline="simaudio", input={}))).job
    claimed = await store.claim_jobs("w1", pipelines=None, limit=1, lease_seconds=30)
    assert [j.id for j in claimed] == [job.id]
    now = utcnow()
    step = Step(job.id, "vad", True, 1, None, 1, now - timedelta(seconds=1), now)
    await store.save_step(step, "w1")
    before, after = now.timestamp() - 0.5, time.time() + 0.5
    calls = [(f"{job.id}:vad", before), (f"{job.id}:transcribe[0]", after), (f"{job.id}:vad", after)]
    report = Report("test")
    await tally_steps(store, calls, report)
    assert report.finished_steps_run_twice == [f"{job.id}:vad"]
    assert (report.provider_calls, report.provider_steps) == (3, 2)


async def test_a_job_starting_before_its_predecessor_finished_counts_as_out_of_order(store: JobStore) -> None:
    first = (await store.submit(NewJob(pipeline="demo", input={}, ordering_key="u"))).job
    second = (await store.submit(NewJob(pipeline="demo", input={"n": 2}, ordering_key="u"))).job
    await store.append_events(first.id, [("job.started", {})])
    await store.append_events(second.id, [("job.started", {})])
    await store.append_events(first.id, [("job.finished", {"status": "succeeded"})])
    report = Report("test")
    await tally_order(store, {"u": [second.id, first.id]}, report)
    assert (report.ordered_jobs, report.order_violations) == (2, [second.id])
