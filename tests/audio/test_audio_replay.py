"""Replaying an audio job from ``structure`` (``POST /v1/jobs/{id}/replay?from=structure``) on hosted providers (the
simulator on loopback): the new job structures the conversations again and transcribes nothing (simulator call
counts by job and step)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from audio_support import api, example, fast_settings, result_of, submit, wait_job

from ingestd.sim.testing import provider_settings, running_simulator
from ingestd.store import open_store


async def test_a_replay_from_structure_does_not_transcribe_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingestd.db"
    store = await open_store(url)
    try:
        with running_simulator({"time_scale": 0.01}) as sim:
            settings = fast_settings(url, **provider_settings(sim, stt="deepgram", embedding="offline"))
            async with api(store, settings) as client:
                first = await submit(client, [("two.webm", example("two-conversations.webm"))], {"speakers": 2})
                assert (await wait_job(client, first))["status"] == "succeeded"
                answer = await client.post(f"/v1/jobs/{first}/replay", params={"from": "structure"})
                assert answer.status_code == 202, answer.text
                again = answer.json()["id"]
                assert (await wait_job(client, again))["status"] == "succeeded"
                results = [await result_of(client, job_id) for job_id in (first, again)]
            stats = sim.stats()
    finally:
        await store.close()
    transcribed = Counter(k.split(":")[0] for k in stats["route_keys"].get("deepgram", {}))
    structured = Counter(k.split(":")[0] for k in stats["route_keys"].get("chat", {}))
    assert transcribed == {first: results[0]["clips"]} and again not in transcribed  # no clip transcribed twice
    assert structured[again] == structured[first] > 0  # every conversation structured again
    assert [c["transcript"] for c in results[1]["conversations"]] == [
        c["transcript"] for c in results[0]["conversations"]
    ]
