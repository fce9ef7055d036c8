"""The store contract: steps, events, wake-ups in and across processes, blobs, API keys (every backend)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from ingestd import errors
from ingestd.models import NewJob, Step, utcnow
from ingestd.store.protocol import JobStore


async def _running_job(store: JobStore) -> str:
    job_id = (await store.submit(NewJob("demo", {}))).job.id
    await store.claim_jobs("w", pipelines=None, limit=1, lease_seconds=30)
    return job_id


async def _woken_by_a_wakeup(waiter: asyncio.Task[object], fallback: float) -> object:
    """Await a sleeper started with a ``fallback``-second timeout while the fallback poll is ``fallback`` seconds
    too (``slow_fallback``): ending within half of that, it was ended by a wake-up, not by a poll or its timeout.
    Behaviour, not speed: a wake-up takes milliseconds, the margin is seconds, so a loaded machine passes."""
    return await asyncio.wait_for(waiter, fallback / 2)


def _step(job_id: str, key: str, output: object) -> Step:
    return Step(job_id, key, True, output, None, 1, utcnow(), utcnow(), {"tokens": 1})


async def test_steps_first_write_wins(store: JobStore) -> None:
    job_id = await _running_job(store)
    saved = await store.save_step(_step(job_id, "work[0]", {"v": (1, 2)}), "w", [("step.finished", {"key": "x"})])
    assert saved.output == {"v": [1, 2]} and saved.usage == {"tokens": 1}
    again = await store.save_step(_step(job_id, "work[0]", {"v": "second"}), "w", [("step.finished", {})])
    assert again.output == {"v": [1, 2]}
    steps = await store.load_steps(job_id)
    assert list(steps) == ["work[0]"] and steps["work[0]"].output == {"v": [1, 2]}
    assert [e.type for e in await store.read_events(job_id)].count("step.finished") == 1
    with pytest.raises(errors.LeaseLost):
        await store.save_step(_step(job_id, "work[1]", 1), "intruder")


async def test_event_seqs_have_no_gaps_under_concurrency(store: JobStore) -> None:
    job_id = await _running_job(store)
    batches = [[("job.progress", {"i": i, "j": j}) for j in range(3)] for i in range(30)]
    results = await asyncio.gather(*(store.append_events(job_id, b) for b in batches))
    assert all(len(r) == 3 for r in results)
    seqs = [e.seq for e in await store.read_events(job_id)]
    assert seqs == list(range(1, 3 * 30 + 3))
    page = await store.read_events(job_id, after=10, limit=5)
    assert [e.seq for e in page] == [11, 12, 13, 14, 15]


async def test_wait_for_events_in_process(slow_fallback: float, store: JobStore) -> None:
    job_id = await _running_job(store)
    assert await store.wait_for_events(job_id, 0, 1.0)  # already there
    assert not await store.wait_for_events(job_id, 2, 0.05)
    waiter = asyncio.create_task(store.wait_for_events(job_id, 2, slow_fallback))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await store.append_events(job_id, [("job.progress", {})])
    assert await _woken_by_a_wakeup(waiter, slow_fallback) is True


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from ingestd.models import NewJob
    from ingestd.store import open_store

    async def main(url, action, job_id):
        store = await open_store(url, migrate=False)
        try:
            if action == "append":
                await store.append_events(job_id, [("job.progress", {"from": "child"})])
            else:
                await store.submit(NewJob("demo", {"from": "child"}))
        finally:
            await store.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def _child(url: str, action: str, job_id: str = "-") -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", _CHILD, url, action, job_id)
    assert await proc.wait() == 0


async def test_wait_for_events_woken_by_another_process(slow_fallback: float, store: JobStore) -> None:
    job_id = await _running_job(store)
    waiter = asyncio.create_task(store.wait_for_events(job_id, 2, slow_fallback))
    await asyncio.sleep(0.05)
    await _child(store.url, "append", job_id)
    assert await _woken_by_a_wakeup(waiter, slow_fallback) is True
    assert (await store.read_events(job_id))[-1].data == {"from": "child"}


async def test_wait_for_work_woken_by_a_submit_from_another_process(slow_fallback: float, store: JobStore) -> None:
    waiter = asyncio.create_task(store.wait_for_work(slow_fallback))
    await asyncio.sleep(0.05)
    await _child(store.url, "submit")
    await _woken_by_a_wakeup(waiter, slow_fallback)
    assert len(await store.claim_jobs("w", pipelines=None, limit=5, lease_seconds=30)) == 1


async def test_wait_for_work_in_process_and_timeout(slow_fallback: float, store: JobStore) -> None:
    started = time.monotonic()
    await store.wait_for_work(0.05)
    assert time.monotonic() - started >= 0.04  # with nothing to do, it sleeps its whole timeout
    waiter = asyncio.create_task(store.wait_for_work(slow_fallback))
    await asyncio.sleep(0.02)
    await store.submit(NewJob("demo", {}))
    await _woken_by_a_wakeup(waiter, slow_fallback)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_blobs_round_trip(store: JobStore) -> None:
    big = bytes(range(256)) * 9000  # ~2.3 MB: several chunks
    ref, size = await store.blobs.put(_chunks(b"head", big, b"tail"))
    assert size == len(big) + 8
    data = b"".join([c async for c in store.blobs.open(ref)])
    assert data == b"head" + big + b"tail"
    with open(await store.blobs.local_path(ref), "rb") as f:
        assert f.read() == data
    await store.blobs.delete(ref)
    with pytest.raises(errors.NotFound):
        await store.blobs.local_path(ref)
    await store.blobs.delete(ref)  # idempotent


async def test_blob_size_limit_leaves_nothing(store: JobStore) -> None:
    with pytest.raises(errors.InputTooLarge):
        await store.blobs.put(_chunks(b"x" * 600, b"y" * 600), max_size=1000)
    ref, size = await store.blobs.put(_chunks(b"x" * 1000), max_size=1000)
    assert size == 1000
    assert b"".join([c async for c in store.blobs.open(ref)]) == b"x" * 1000


async def test_api_keys(store: JobStore) -> None:
    assert not await store.has_api_keys()
    assert await store.tenant_for_key("h") is None
    await store.add_api_key("h", "acme")
    assert await store.has_api_keys()
    assert await store.tenant_for_key("h") == "acme"


async def test_subprocess_helper_python_is_ours() -> None:
    out = subprocess.run([sys.executable, "-c", "import ingestd.store"], check=False)
    assert out.returncode == 0
