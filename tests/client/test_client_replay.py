"""``replay`` of the light client against a live server (sync and async)."""

from __future__ import annotations

import pytest
from client_support import Live
from ingestd_client import ApiError, AsyncClient, Client


def test_a_replay_through_the_light_client(live: Live) -> None:
    with Client(live.url, live.key) as client:
        first = client.wait(client.submit("demo", {"items": 2, "seconds": 0}).id, deadline=60)
        again = client.replay(first.id, "collect")
        assert again.id != first.id and client.wait(again.id, deadline=60).status == "succeeded"
        assert client.result(again.id) == client.result(first.id)
        with pytest.raises(ApiError) as refused:
            client.replay(first.id, "nope")
        assert refused.value.status == 422


async def test_a_replay_through_the_async_client(live: Live) -> None:
    async with AsyncClient(live.url, live.key) as client:
        first = await client.wait((await client.submit("demo", {"items": 1, "seconds": 0})).id, deadline=60)
        again = await client.replay(first.id, "work")
        assert (await client.wait(again.id, deadline=60)).status == "succeeded"
