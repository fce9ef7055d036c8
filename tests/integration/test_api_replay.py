"""``POST /v1/jobs/{id}/replay?from=STEP`` through the API (both databases): a new job from a copy of the input,
the files and the checkpoints before STEP; only STEP and what follows it run again."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
from api_support import ApiFactory, assert_problem, finished, parse_sse, submit


async def started_steps(api: httpx.AsyncClient, job_id: str) -> Counter[str]:
    events = parse_sse((await api.get(f"/v1/jobs/{job_id}/events")).text)
    return Counter(json.loads(e["data"])["data"]["key"] for e in events if e["event"] == "step.started")


async def replayed(api: httpx.AsyncClient, job_id: str, stage: str) -> dict[str, Any]:
    answer = await api.post(f"/v1/jobs/{job_id}/replay", params={"from": stage})
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/jobs/{answer.json()['id']}" and answer.json()["id"] != job_id
    return await finished(api, answer.json()["id"])


async def test_a_replay_from_a_step_runs_only_that_step_and_what_follows(api_factory: ApiFactory) -> None:
    api = await api_factory()
    first = await finished(api, (await submit(api, "demo", {"items": 3, "seconds": 0})).json()["id"])
    assert first["status"] == "succeeded"
    again = await replayed(api, first["id"], "collect")
    assert again["status"] == "succeeded"
    assert (await api.get(f"/v1/jobs/{again['id']}/result")).json() == (
        await api.get(f"/v1/jobs/{first['id']}/result")
    ).json()
    assert await started_steps(api, again["id"]) == Counter({"collect": 1})  # prepare and work[0..2] copied
    events = parse_sse((await api.get(f"/v1/jobs/{again['id']}/events")).text)
    [note] = [json.loads(e["data"])["data"] for e in events if e["event"] == "job.replayed"]
    assert note == {"of": first["id"], "from": "collect", "kept": ["prepare", "work[0]", "work[1]", "work[2]"]}
    from_work = await replayed(api, first["id"], "work")
    assert await started_steps(api, from_work["id"]) == Counter(["work[0]", "work[1]", "work[2]", "collect"])


async def test_a_replay_copies_the_files(api_factory: ApiFactory) -> None:
    api = await api_factory()
    made = await api.post("/v1/pipelines/checksum/jobs", files={"file": ("a.bin", b"x" * 5000)})
    first = await finished(api, made.json()["id"])
    again = await replayed(api, first["id"], "digest")
    assert again["status"] == "succeeded", again
    digests = [(await api.get(f"/v1/jobs/{j['id']}/result")).json()["files"] for j in (first, again)]
    assert digests[0] == digests[1] and digests[0][0]["size"] == 5000
    assert (await api.delete(f"/v1/jobs/{first['id']}")).status_code in (200, 204)  # the copy is the new job's own
    assert (await api.get(f"/v1/jobs/{again['id']}/result")).status_code == 200


async def test_a_replay_needs_a_finished_job_and_one_of_its_steps(api_factory: ApiFactory) -> None:
    api = await api_factory()
    done = await finished(api, (await submit(api, "demo", {"items": 1, "seconds": 0})).json()["id"])
    problem = assert_problem(await api.post(f"/v1/jobs/{done['id']}/replay", params={"from": "nope"}), 422)
    assert "collect, prepare, work" in problem["detail"]
    assert_problem(await api.post("/v1/jobs/nope/replay", params={"from": "collect"}), 404)
    assert_problem(await api.post(f"/v1/jobs/{done['id']}/replay"), 422)  # from= is required
    running = (await submit(api, "demo", {"items": 1, "seconds": 30})).json()["id"]
    assert_problem(await api.post(f"/v1/jobs/{running}/replay", params={"from": "work"}), 409)
    await api.post(f"/v1/jobs/{running}/cancel")
