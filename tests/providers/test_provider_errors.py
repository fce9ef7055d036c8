"""Failures are translated where they enter: TransientError (retry) or PermanentError (give up), naming the provider."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from ingestd import errors
from ingestd.providers.deepgram import DeepgramTranscriber
from ingestd.providers.hosted_vad import HostedVAD
from ingestd.providers.http import parse_retry_after
from ingestd.providers.openai_compat import OpenAIChat, OpenAIEmbedder, OpenAITranscriber
from ingestd.sim.testing import API_KEY, SimulatorURL

Call = Callable[[], Awaitable[object]]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False}


def calls(base: str, client: httpx.AsyncClient, pcm_path: Path, *, timeout: float = 30) -> dict[str, tuple[str, Call]]:
    """One call per provider client: (simulator route, call)."""
    pcm = pcm_path.read_bytes()
    v1 = base + "/v1"
    deepgram = DeepgramTranscriber(base, API_KEY, timeout=timeout, client=client)
    whisper = OpenAITranscriber(v1, API_KEY, timeout=timeout, client=client)
    chat = OpenAIChat(v1, API_KEY, timeout=timeout, client=client)
    embedder = OpenAIEmbedder(v1, API_KEY, timeout=timeout, client=client)
    vad = HostedVAD(base, API_KEY, timeout=timeout, client=client)
    return {
        "deepgram": ("deepgram", lambda: deepgram.transcribe(pcm)),
        "openai-stt": ("transcriptions", lambda: whisper.transcribe(pcm)),
        "openai-chat": ("chat", lambda: chat.complete_json("s", "u", schema=SCHEMA, schema_name="x")),
        "openai-embed": ("embeddings", lambda: embedder.embed(["x"])),
        "hosted-vad": ("vad", lambda: vad.detect(str(pcm_path))),
    }


PROVIDERS = ["deepgram", "openai-stt", "openai-chat", "openai-embed", "hosted-vad"]


@pytest.fixture
def pcm_path(tmp_path: Path, speech_pcm: bytes) -> Path:
    path = tmp_path / "a.pcm"
    path.write_bytes(speech_pcm)
    return path


@pytest.mark.parametrize("which", PROVIDERS)
async def test_429_is_transient_with_retry_after(
    sim: SimulatorURL, http_client: httpx.AsyncClient, pcm_path: Path, which: str
) -> None:
    route, call = calls(sim, http_client, pcm_path)[which]
    sim.configure({"time_scale": 0.5, "routes": {route: {"error_rates": {429: 1.0}, "retry_after_seconds": 4}}})
    with pytest.raises(errors.TransientError) as caught:
        await call()
    assert caught.value.retry_after == 2.0
    assert "HTTP 429" in caught.value.detail and "simulated 429" in caught.value.detail
    assert caught.value.extra["status_code"] == 429


@pytest.mark.parametrize("which", PROVIDERS)
async def test_500_is_transient_and_400_permanent(
    sim: SimulatorURL, http_client: httpx.AsyncClient, pcm_path: Path, which: str
) -> None:
    route, call = calls(sim, http_client, pcm_path)[which]
    sim.configure({"routes": {route: {"error_rates": {500: 1.0}}}})
    with pytest.raises(errors.TransientError) as transient:
        await call()
    assert transient.value.retry_after is None
    sim.configure({"routes": {route: {"error_rates": {400: 1.0}}}})
    with pytest.raises(errors.PermanentError) as permanent:
        await call()
    provider = "hosted-vad" if which == "hosted-vad" else which.split("-")[0]
    assert permanent.value.detail.startswith(f"{provider}: HTTP 400")


@pytest.mark.parametrize("which", PROVIDERS)
async def test_a_hang_times_out_as_transient(
    sim: SimulatorURL, http_client: httpx.AsyncClient, pcm_path: Path, which: str
) -> None:
    route, call = calls(sim, http_client, pcm_path, timeout=0.3)[which]
    sim.configure({"routes": {route: {"hang_rate": 1.0}}})
    with pytest.raises(errors.TransientError, match=r"no answer within 0\.3 s"):
        await call()
    stats = sim.stats()  # one call, which the client gave up on (no retry of its own): the simulator counted it
    assert stats["total_calls"] == 1 and stats["routes"][route]["outcomes"] == {"hang": 1}


@pytest.mark.parametrize("which", PROVIDERS)
async def test_a_malformed_answer_is_permanent(
    sim: SimulatorURL, http_client: httpx.AsyncClient, pcm_path: Path, which: str
) -> None:
    route, call = calls(sim, http_client, pcm_path)[which]
    sim.configure({"routes": {route: {"malformed_rate": 1.0}}})
    with pytest.raises(errors.PermanentError, match="not JSON"):
        await call()


async def test_a_refused_connection_is_transient(http_client: httpx.AsyncClient, pcm_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, call = calls(f"http://127.0.0.1:{port}", http_client, pcm_path)["openai-chat"]
    with pytest.raises(errors.TransientError, match="openai: connection failed"):
        await call()


async def test_a_missing_api_key_is_permanent(sim: SimulatorURL, http_client: httpx.AsyncClient) -> None:
    chat = OpenAIChat(sim.openai_base_url, None, client=http_client)
    with pytest.raises(errors.PermanentError, match="HTTP 401"):
        await chat.complete_json("s", "u", schema=SCHEMA, schema_name="x")


def test_retry_after_forms() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "7"})) == 7
    assert parse_retry_after(httpx.Headers({"Retry-After": "0.25"})) == 0.25
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "Retry-After": "9"})) == 1.5
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (parse_retry_after(httpx.Headers({"Retry-After": future})) or 0) <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(httpx.Headers({"Retry-After": past})) == 0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers()) is None
