"""Hostile input is refused before the 202 with a 4xx problem naming the field, on SQLite and PostgreSQL
(issue 15, points 4 and 6): NUL characters, deep nesting, huge cursors, a file-less audio submit, huge headers,
and the protocol details (405 ``Allow``, 401 ``WWW-Authenticate``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import assert_problem, finished, submit

# Refused before the store is asked: one backend is enough (the NUL cases run on both, PostgreSQL being the one
# that cannot hold a NUL).
before_the_store = pytest.mark.parametrize("backend", ["sqlite"])


def nested(depth: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = {"x": value}
    return {"label": value}


async def test_nul_in_an_input_string_is_a_422_at_submit(api: httpx.AsyncClient) -> None:
    problem = assert_problem(await submit(api, "checksum", {"label": "a\u0000b"}), 422, "invalid-input")
    assert problem["errors"][0]["loc"] == ["body", "label"] and "NUL" in problem["errors"][0]["msg"]
    memory = {"user_id": "alice", "session_id": "s1", "messages": [{"role": "user", "content": "hi \u0000 there"}]}
    problem = assert_problem(await submit(api, "memory", memory), 422, "invalid-input")
    assert problem["errors"][0]["loc"] == ["body", "messages", 0, "content"]
    files = {"input": (None, '{"label": "\\u0000"}'), "f": ("a.bin", b"x")}
    problem = assert_problem(await api.post("/v1/pipelines/checksum/jobs", files=files), 422, "invalid-input")
    assert problem["errors"][0]["loc"] == ["body", "label"]
    assert (await api.get("/v1/jobs")).json()["jobs"] == []  # nothing was stored


async def test_nul_in_query_and_path_is_a_4xx_problem(api: httpx.AsyncClient) -> None:
    problem = assert_problem(await api.post("/v1/pipelines/demo/jobs?ordering_key=a%00b", json={}), 422)
    assert problem["errors"][0]["loc"] == ["query", "ordering_key"]
    problem = assert_problem(await api.get("/v1/jobs?pipeline=%00"), 422)
    assert problem["errors"][0]["loc"] == ["query", "pipeline"]
    assert_problem(await api.get("/v1/jobs/abc%00def"), 404, "not-found")
    assert_problem(await api.get("/v1/jobs/abc%00def/events"), 404, "not-found")


@before_the_store
async def test_deeply_nested_json_is_a_422_not_a_500(api: httpx.AsyncClient) -> None:
    problem = assert_problem(await submit(api, "checksum", nested(300)), 422, "invalid-input")
    assert "nested deeper than" in problem["errors"][0]["msg"]
    accepted = await submit(api, "checksum", nested(20))  # ordinary nesting is fine (and fails validation only)
    assert accepted.status_code == 422 and "nested deeper" not in accepted.text


@before_the_store
async def test_an_event_cursor_past_any_sequence_number_is_a_422(api: httpx.AsyncClient) -> None:
    job = (await submit(api, "demo", {"items": 1, "seconds": 0})).json()
    await finished(api, job["id"])
    problem = assert_problem(await api.get(f"/v1/jobs/{job['id']}/events?after=99999999999999999999"), 422)
    assert problem["errors"][0]["loc"] == ["query", "after"]
    huge = {"Last-Event-ID": "99999999999999999999"}
    assert_problem(await api.get(f"/v1/jobs/{job['id']}/events", headers=huge), 400, "bad-request")


@before_the_store
async def test_an_audio_submit_without_a_file_is_a_422(api: httpx.AsyncClient) -> None:
    problem = assert_problem(await submit(api, "audio", {}), 422, "invalid-input")
    assert "at least one file" in problem["detail"]


@before_the_store
async def test_huge_headers_are_a_431(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/jobs", headers={"X-Padding": "a" * 100_000})
    assert_problem(response, 431)
    assert (await api.get("/v1/jobs", headers={"X-Padding": "a" * 1000})).status_code == 200


@before_the_store
async def test_405_lists_every_allowed_method(api: httpx.AsyncClient) -> None:
    job = (await submit(api, "demo", {"items": 1, "seconds": 0})).json()
    response = await api.put(f"/v1/jobs/{job['id']}")
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "DELETE"}


@before_the_store
async def test_401_carries_www_authenticate(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/jobs", headers={"Authorization": "Bearer ik_unknown"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
