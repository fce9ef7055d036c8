"""Helpers for the integration tests: submitting, waiting for a job to end, reading problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from workers import job_via_api

PROBLEM_JSON = "application/problem+json"
ApiFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def submit(api: httpx.AsyncClient, pipeline: str = "demo", body: dict[str, Any] | None = None,
                 **kwargs: Any) -> httpx.Response:  # fmt: skip
    return await api.post(f"/v1/pipelines/{pipeline}/jobs", json=body if body is not None else {}, **kwargs)


async def finished(api: httpx.AsyncClient, job_id: str, timeout: float = 20.0, **kwargs: Any) -> dict[str, Any]:
    """Long-poll the job until it is terminal; the job as the API shows it."""
    return await job_via_api(api, job_id, timeout, interval=0, params={"wait": 2}, **kwargs)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and ``code``); returns its members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["type"].startswith("https://")
    if code is not None:
        assert problem["code"] == code, problem
    return problem


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of a Server-Sent Events body: ``{"id": int, "event": str, "data": str}`` each."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "data" in fields:
            events.append({"id": int(fields["id"]), "event": fields["event"], "data": fields["data"]})
    return events
