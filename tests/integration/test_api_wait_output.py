"""A submit with ``Prefer: wait`` that finishes in time answers with the result itself (``output``), not only its
link; without the preference, or when the job is not done, there is no ``output``."""

from __future__ import annotations

import httpx
from api_support import submit


async def test_prefer_wait_returns_the_result_inline(api: httpx.AsyncClient) -> None:
    waited = await submit(api, "demo", {"items": 2, "seconds": 0}, headers={"Prefer": "wait=20"})
    assert waited.status_code == 200, waited.text
    job = waited.json()
    assert job["status"] == "succeeded" and job["output"] == {"ok": [0, 1], "failed": []}
    assert job["result"] == f"/v1/jobs/{job['id']}/result"
    assert "output" not in (await api.get(f"/v1/jobs/{job['id']}")).json()
    slow = await submit(api, "demo", {"items": 1, "seconds": 30}, headers={"Prefer": "wait=0.2"})
    assert slow.status_code == 202 and "output" not in slow.json()
    await api.post(f"/v1/jobs/{slow.json()['id']}/cancel")
