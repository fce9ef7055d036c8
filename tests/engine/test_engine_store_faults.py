"""A transient store error anywhere in a job is retried, never the job's end (issue 15, point 1).

The fault is injected by the database itself: on PostgreSQL a trigger raising SQLSTATE 40001 (serialization
failure) on the first insert of one checkpoint (a sequence counts the firings: sequences are not rolled back); on
SQLite a temporary trigger calling a function that raises ``OperationalError`` once (what ``SQLITE_BUSY`` is).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import workers
from engine_helpers import events_of, fast_settings, running_worker, submit, wait_finished, wait_until
from engine_pipelines import append, lines
from pydantic import BaseModel

from ingestd.models import JSON, JobStatus
from ingestd.pipeline import Context, Pipeline
from ingestd.store.protocol import JobStore

_PG_FAULT = """
CREATE SEQUENCE fault_fired;
CREATE FUNCTION fault_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = '{key}' AND nextval('fault_fired') = 1 THEN
        RAISE EXCEPTION 'injected: could not serialize access' USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fault_once BEFORE INSERT ON steps FOR EACH ROW EXECUTE FUNCTION fault_once();
"""


async def fail_first_checkpoint(store: JobStore, key: str) -> None:
    """The first insert of the checkpoint ``key`` fails once with a transient database error."""
    if store.url.startswith("postgresql"):
        conn = await asyncpg.connect(store.url)
        try:
            await conn.execute(_PG_FAULT.format(key=key))
        finally:
            await conn.close()
        return
    fired: list[str] = []

    def fault(step_key: str) -> int:
        if step_key == key and not fired:
            fired.append(step_key)
            raise sqlite3.OperationalError("injected: database is locked")
        return 0

    conn = store._conn  # type: ignore[attr-defined]  # the store's own connection: the trigger lives there
    await store._in_thread(conn.create_function, "fault_once", 1, fault)  # type: ignore[attr-defined]
    trigger = "CREATE TEMP TRIGGER fault_once BEFORE INSERT ON steps BEGIN SELECT fault_once(NEW.key); END"
    await store._in_thread(conn.execute, trigger)  # type: ignore[attr-defined]


async def test_transient_error_on_a_map_item_checkpoint_retries_the_job(store: JobStore, tmp_path: Path) -> None:
    await fail_first_checkpoint(store, "work[1]")
    log = str(tmp_path / "log")
    job = await submit(store, "count", {"log": log, "items": 3, "concurrency": 3})
    async with running_worker(store, store_retry_seconds=0.05):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result == {"ok": [0, 1, 2], "failed": []}
    requeued = [e.data for e in await events_of(store, job.id) if e.type == "job.queued" and "retry_at" in e.data]
    assert len(requeued) == 1  # the reason is visible to the client on the job's event stream
    error = requeued[0]["error"]
    backend = "postgresql" if store.url.startswith("postgresql") else "sqlite"
    assert error["code"] == "store-error" and error["detail"].startswith(f"{backend}: ")
    assert lines(log).count(f"{job.id} end prepare") == 1  # the checkpointed step did not run again


async def test_transient_error_on_a_plain_step_checkpoint_retries_the_job(store: JobStore, tmp_path: Path) -> None:
    await fail_first_checkpoint(store, "collect")
    log = str(tmp_path / "log")
    job = await submit(store, "count", {"log": log, "items": 2})
    async with running_worker(store, store_retry_seconds=0.05):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    for key in ("prepare", "work[0]", "work[1]"):
        assert lines(log).count(f"{job.id} end {key}") == 1


async def test_ordering_keys_are_scoped_by_tenant(store: JobStore, tmp_path: Path) -> None:
    """Tenant B's job under the key ``memory:alice`` must not hold tenant A's job for its own alice (point 2)."""
    log, gate = str(tmp_path / "log"), tmp_path / "gate"
    key = "memory:alice"
    theirs = await submit(store, "count", {"log": log, "items": 1, "gate": str(gate)}, tenant="b", ordering_key=key)
    async with running_worker(store):
        await wait_until(lambda: _status_is(store, theirs.id, JobStatus.RUNNING), what="tenant b's job to start")
        mine = await submit(store, "count", {"log": log, "items": 1}, tenant="a", ordering_key=key)
        done = await wait_finished(store, mine.id, timeout=15)
        assert done.status == JobStatus.SUCCEEDED
        assert await _status_is(store, theirs.id, JobStatus.RUNNING)  # still held at its gate
        gate.touch()
        assert (await wait_finished(store, theirs.id)).status == JobStatus.SUCCEEDED


async def _status_is(store: JobStore, job_id: str, status: JobStatus) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.status == status


async def reject_checkpoint(store: JobStore, key: str) -> None:
    """Every insert of the checkpoint ``key`` is refused for its data (SQLSTATE 22P05 / SQLite's constraint)."""
    if store.url.startswith("postgresql"):
        conn = await asyncpg.connect(store.url)
        try:
            await conn.execute(_PG_REJECT.format(key=key))
        finally:
            await conn.close()
        return
    conn = store._conn  # type: ignore[attr-defined]
    trigger = (
        f"CREATE TEMP TRIGGER reject BEFORE INSERT ON steps WHEN NEW.key = '{key}' "
        "BEGIN SELECT RAISE(ABORT, 'injected: value refused'); END"
    )
    await store._in_thread(conn.execute, trigger)  # type: ignore[attr-defined]


_PG_REJECT = """
CREATE FUNCTION reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = '{key}' THEN
        RAISE EXCEPTION 'injected: value refused' USING ERRCODE = '22P05';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reject BEFORE INSERT ON steps FOR EACH ROW EXECUTE FUNCTION reject();
"""


async def test_data_the_store_refuses_fails_the_job_naming_it_instead_of_retrying(
    store: JobStore, tmp_path: Path
) -> None:
    await reject_checkpoint(store, "work[0]")
    job = await submit(store, "count", {"log": str(tmp_path / "log"), "items": 2})
    async with running_worker(store, store_retry_seconds=0.05):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.FAILED and done.error is not None
    assert done.error["code"] == "store-rejected" and "injected: value refused" in done.error["reason"]
    assert done.attempt == 1  # failed for good at once, not queued again


class _NestedInput(BaseModel):
    log: str


async def _run_nested(ctx: Context, inp: _NestedInput) -> JSON:
    async def inner() -> int:
        append(inp.log, f"{ctx.job.id} end inner")
        return 1

    async def outer() -> int:  # a step whose own code writes to the store (here: a nested checkpoint)
        return await ctx.step("inner", inner) + 1

    return {"value": await ctx.step("outer", outer)}


async def test_transient_error_inside_a_steps_own_code_retries_the_job(store: JobStore, tmp_path: Path) -> None:
    await fail_first_checkpoint(store, "inner")
    nested = Pipeline(name="nested", input_model=_NestedInput, run=_run_nested)
    log = str(tmp_path / "log")
    job = await submit(store, "nested", {"log": log})
    settings = fast_settings(store.url, store_retry_seconds=0.05)
    async with workers.running_worker(store, settings, pipelines={"nested": nested}):
        done = await wait_finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.result == {"value": 2}
