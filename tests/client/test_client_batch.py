"""``submit_batch`` of the light client against a live server: each item's job or problem, the same jobs when
the batch is sent again with its key (sync and async)."""

from __future__ import annotations

from client_support import Live
from ingestd_client import AsyncClient, Client


def test_a_batch_through_the_light_client(live: Live) -> None:
    items = [{"input": {"items": 1, "seconds": 0}} for _ in range(5)] + [{"input": {"items": -1}}]
    with Client(live.url, live.key) as client:
        first = client.submit_batch("demo", items, idempotency_key="client-batch-1")
        assert (first["accepted"], first["rejected"]) == (5, 1)
        assert first["jobs"][5]["problem"]["status"] == 422 and "job" not in first["jobs"][5]
        again = client.submit_batch("demo", items, idempotency_key="client-batch-1")
        ids = [[e["job"]["id"] for e in answer["jobs"][:5]] for answer in (first, again)]
        assert ids[0] == ids[1] and len(set(ids[0])) == 5
        assert all(e.get("replayed") for e in again["jobs"][:5])
        assert client.wait(first["jobs"][0]["job"]["id"], deadline=60).status == "succeeded"


async def test_a_batch_through_the_async_client(live: Live) -> None:
    async with AsyncClient(live.url, live.key) as client:
        made = await client.submit_batch("demo", [{"input": {"items": 1, "seconds": 0}, "idempotency_key": "a-1"}])
        [entry] = made["jobs"]
        assert entry["index"] == 0 and entry["replayed"] is False
        assert (await client.wait(entry["job"]["id"], deadline=60)).status == "succeeded"
