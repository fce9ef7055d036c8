"""The simulator itself: counters, knobs, latency model, faults, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ingestd.sim.config import RouteConfig, SimConfig
from ingestd.sim.server import build_parser, config_from_args
from ingestd.sim.testing import SimulatorURL, running_simulator

AUTH = {"Authorization": "Bearer k"}


def chat_body(text: str = "hello") -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


async def post_chats(sim: SimulatorURL, count: int, key_prefix: str = "k") -> list[float]:
    """``count`` concurrent chat calls; the seconds each took."""

    async def one(client: httpx.AsyncClient, i: int) -> float:
        started = time.perf_counter()
        r = await client.post(
            "/v1/chat/completions", json=chat_body(), headers={**AUTH, "X-Request-Key": f"{key_prefix}{i}"}
        )
        assert r.status_code == 200
        return time.perf_counter() - started

    async with httpx.AsyncClient(base_url=sim, timeout=30) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(count))))


def test_counts_calls_per_route_and_request_key(sim: SimulatorURL) -> None:
    for key in ("a", "a", "b"):
        httpx.post(sim + "/v1/chat/completions", json=chat_body(), headers={**AUTH, "Idempotency-Key": key})
    httpx.post(sim + "/v1/embeddings", json={"model": "e", "input": "x"}, headers={**AUTH, "X-Request-Key": "a"})
    stats = sim.stats()
    assert stats["total_calls"] == 4
    assert stats["routes"]["chat"]["calls"] == 3
    assert stats["routes"]["chat"]["outcomes"] == {"ok": 3}
    assert stats["keys"] == {"a": 3, "b": 1}
    assert stats["route_keys"] == {"chat": {"a": 2, "b": 1}, "embeddings": {"a": 1}}
    assert sim.reset()["total_calls"] == 0
    assert sim.stats()["keys"] == {}


def test_config_is_patched_at_run_time_and_validated(sim: SimulatorURL) -> None:
    config = sim.configure({"seed": 7, "routes": {"*": {"error_rates": {"503": 0.5}}, "chat": {"median_seconds": 1}}})
    assert config["seed"] == 7
    assert config["routes"]["vad"]["error_rates"] == {"503": 0.5}
    assert config["routes"]["chat"]["median_seconds"] == 1
    assert config["routes"]["chat"]["p95_seconds"] == 8  # untouched fields stay
    assert config["time_scale"] == 0.01
    for bad in ({"routes": {"nope": {}}}, {"routes": {"chat": {"median": 1}}}, {"time_scale": -1}, [1]):
        r = httpx.post(sim + "/_sim/config", json=bad)
        assert r.status_code == 400, bad
    assert httpx.get(sim + "/_sim/config").json()["seed"] == 7


async def test_peak_concurrency_is_counted(sim: SimulatorURL) -> None:
    sim.configure({"time_scale": 1, "routes": {"chat": {"median_seconds": 0.3, "p95_seconds": 0.3}}})
    await post_chats(sim, 10)
    stats = sim.stats()
    assert stats["peak_in_flight"] == 10
    assert stats["routes"]["chat"]["peak_in_flight"] == 10
    assert stats["in_flight"] == 0


async def test_contention_slows_calls_beyond_the_knee(sim: SimulatorURL) -> None:
    fixed = {"median_seconds": 0.1, "p95_seconds": 0.1, "contention_knee": 1, "contention_k": 1.0}
    sim.configure({"time_scale": 1, "routes": {"chat": fixed}})
    alone = await post_chats(sim, 1)
    crowded = await post_chats(sim, 5)
    # The fifth call starts with 5 in flight: 0.1 s * (1 + 1.0 * 4) = 0.5 s (a lower bound: the sleep guarantees it),
    # and the call alone, 0.1 s, is the faster (no upper bound in seconds: a loaded machine adds its own delay).
    assert max(crowded) >= 0.45
    assert alone[0] < max(crowded)


async def test_time_scale_shrinks_latency(sim: SimulatorURL) -> None:
    sim.configure({"time_scale": 0.01, "routes": {"chat": {"median_seconds": 20, "p95_seconds": 20}}})
    fast = (await post_chats(sim, 1))[0]  # 20 s scaled to 0.2 s
    sim.configure({"time_scale": 0.05})
    slower = (await post_chats(sim, 1))[0]  # scaled to 1 s
    assert slower >= 0.95
    assert fast < slower


def test_latency_model_is_lognormal_with_the_given_median_and_p95() -> None:
    import random

    route = RouteConfig(median_seconds=4, p95_seconds=8, contention_k=0)
    rng = random.Random(1)
    draws = sorted(route.latency(rng, 0, 1) for _ in range(4000))
    assert 3.7 < draws[2000] < 4.3
    assert 7.2 < draws[3800] < 8.8
    audio = RouteConfig(median_seconds=0.25, p95_seconds=0.25, per_audio_second=0.1)
    assert audio.latency(rng, 60, 1) == pytest.approx(6.25)
    assert RouteConfig(median_seconds=5, p95_seconds=5, max_seconds=2).latency(rng, 0, 1) == 2


def test_errors_carry_a_scaled_retry_after(sim: SimulatorURL) -> None:
    sim.configure({"time_scale": 0.5, "routes": {"chat": {"error_rates": {"429": 1.0}, "retry_after_seconds": 3}}})
    r = httpx.post(sim + "/v1/chat/completions", json=chat_body(), headers=AUTH)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1.500"
    assert r.json()["error"]["message"] == "simulated 429"
    assert sim.stats()["routes"]["chat"]["outcomes"] == {"429": 1}


def test_first_calls_per_key_fail_when_scripted(sim: SimulatorURL) -> None:
    sim.configure({"routes": {"embeddings": {"fail_first_per_key": 2, "fail_first_status": 503}}})
    codes = [
        httpx.post(sim + "/v1/embeddings", json={"model": "e", "input": "x"}, headers={**AUTH, "X-Request-Key": k})
        for k in ("a", "a", "b", "a", "b", "b")
    ]
    assert [r.status_code for r in codes] == [503, 503, 503, 200, 503, 200]


def test_unauthenticated_and_malformed_requests_are_rejected(sim: SimulatorURL) -> None:
    assert httpx.post(sim + "/v1/chat/completions", json=chat_body()).status_code == 401
    r = httpx.post(sim + "/v1/listen", content=b"", headers={"Authorization": "Token k"})
    assert r.status_code == 400
    assert "empty" in r.json()["err_msg"]
    assert httpx.post(sim + "/v1/chat/completions", json={"model": "m"}, headers=AUTH).status_code == 400
    bad_schema = {**chat_body(), "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}
    assert httpx.post(sim + "/v1/chat/completions", json=bad_schema, headers=AUTH).status_code == 400
    assert httpx.post(sim + "/v1/embeddings", json={"model": "e", "input": [1]}, headers=AUTH).status_code == 400
    corrupt = b"RIFF\x10\x00\x00\x00WAVEjunk"
    assert httpx.post(sim + "/v1/listen", content=corrupt, headers={"Authorization": "Token k"}).status_code == 400
    sim.configure({"require_auth": False})
    assert httpx.post(sim + "/v1/chat/completions", json=chat_body()).status_code == 200


def test_a_hanging_call_is_released_when_the_client_gives_up(sim: SimulatorURL) -> None:
    sim.configure({"routes": {"chat": {"hang_rate": 1.0}}})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sim + "/v1/chat/completions", json=chat_body(), headers=AUTH, timeout=0.3)
    deadline = time.monotonic() + 5
    while sim.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = sim.stats()
    assert stats["in_flight"] == 0
    assert stats["routes"]["chat"]["outcomes"] == {"hang": 1}


def test_shutdown_releases_hanging_calls() -> None:
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=60) as client:
        with running_simulator({"routes": {"vad": {"hang_rate": 1.0}}}) as sim:
            call = pool.submit(client.post, sim + "/v1/vad", content=b"\0\0" * 1600, headers=AUTH)
            while not sim.stats()["in_flight"]:
                time.sleep(0.02)
            assert not call.done()  # it hangs until...
        assert call.result().status_code == 504  # ...the shutdown lets it go (the client would wait 60 s)


def test_command_line_builds_the_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    patch = tmp_path / "sim.json"
    patch.write_text('{"routes": {"chat": {"median_seconds": 1.5}}}')
    args = build_parser().parse_args(["--time-scale", "0.1", "--seed", "3", "--no-auth", "--config", f"@{patch}"])
    config = config_from_args(args)
    assert (config.time_scale, config.seed, config.require_auth) == (0.1, 3, False)
    assert config.routes["chat"].median_seconds == 1.5
    assert SimConfig().routes["chat"].median_seconds == 4.0
