"""Uploads by URL through the API (both databases): ``source_urls`` fetched by the worker from a real HTTP
server on loopback (allowed here by ``source_allow_networks``, for tests only), streamed into the job's storage,
with the webhook SSRF rules (loopback refused at submit; a redirect into a refused address fails the fetch step),
a size cap, and a clear failed-step error."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from api_support import ApiFactory, assert_problem, finished

RECORDING = bytes(range(256)) * 40  # 10,240 bytes
PIPELINES = ["api_pipelines:PIPELINES", "source_pipelines:PIPELINES"]
LOOPBACK_ONE = {"source_allow_networks": ["127.0.0.1/32"], "pipeline_modules": PIPELINES}


def _handler(port: list[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes: dict[str, tuple[int, dict[str, str], bytes]] = {
                "/talk.wav": (200, {"content-type": "audio/wav"}, RECORDING),
                "/moved": (302, {"location": "/talk.wav"}, b""),
                "/inward": (302, {"location": f"http://127.0.0.2:{port[0]}/talk.wav"}, b""),
                "/metadata": (301, {"location": "http://169.254.169.254/latest/meta-data/"}, b""),
            }
            status, headers, body = routes.get(self.path, (404, {}, b"not here"))
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def file_server() -> Iterator[str]:
    port: list[int] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(port))
    port.append(server.server_address[1])
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        server.shutdown()
        server.server_close()


async def run(api: Any, urls: list[str]) -> dict[str, Any]:
    answer = await api.post("/v1/pipelines/fetched/jobs", json={"source_urls": urls})
    assert answer.status_code == 202, answer.text
    return await finished(api, answer.json()["id"])


async def test_source_urls_are_fetched_into_the_jobs_files(api_factory: ApiFactory) -> None:
    api = await api_factory(**LOOPBACK_ONE)
    with file_server() as base:
        job = await run(api, [f"{base}/talk.wav", f"{base}/moved"])  # the second is redirected to the first
    assert job["status"] == "succeeded", job
    expected = hashlib.sha256(RECORDING).hexdigest()
    files = (await api.get(f"/v1/jobs/{job['id']}/result")).json()["files"]
    assert [(f["name"], f["size"], f["sha256"]) for f in files] == [
        ("talk.wav", 10240, expected),
        ("moved", 10240, expected),
    ]
    assert files[0]["content_type"] == "audio/wav" and files[0]["meta"] == {"source_url": f"{base}/talk.wav"}


async def test_a_loopback_source_url_is_refused_at_submit(api_factory: ApiFactory) -> None:
    api = await api_factory(pipeline_modules=PIPELINES)  # no allow-list: the production default
    with file_server() as base:
        answer = await api.post("/v1/pipelines/fetched/jobs", json={"source_urls": [f"{base}/talk.wav"]})
    problem = assert_problem(answer, 422, "invalid-input")
    assert "loopback" in problem["detail"] and "INGESTD_SOURCE_ALLOW_NETWORKS" in problem["detail"]
    for url in ("ftp://example.com/a.wav", "http://169.254.169.254/latest/"):
        answer = await api.post("/v1/pipelines/fetched/jobs", json={"source_urls": [url]})
        assert_problem(answer, 422, "invalid-input")


async def test_a_redirect_into_a_refused_address_fails_the_fetch_step(api_factory: ApiFactory) -> None:
    api = await api_factory(**LOOPBACK_ONE)
    with file_server() as base:
        inward = await run(api, [f"{base}/inward"])  # to 127.0.0.2: loopback too, and not allowed
        metadata = await run(api, [f"{base}/metadata"])
    for job, why in ((inward, "a loopback address"), (metadata, "a cloud metadata address")):
        assert job["status"] == "failed", job
        error = job["error"]
        assert error["stage"] == "fetch" and why in error["reason"] and "redirected to" in error["reason"], error


async def test_over_the_cap_or_missing_fails_the_fetch_step_saying_why(api_factory: ApiFactory) -> None:
    api = await api_factory(**LOOPBACK_ONE, source_max_bytes=4096)
    with file_server() as base:
        big = await run(api, [f"{base}/talk.wav"])
        missing = await run(api, [f"{base}/gone.wav"])
    assert big["status"] == "failed" and big["error"]["stage"] == "fetch"
    assert "10,240 bytes, over the 4,096-byte cap (INGESTD_SOURCE_MAX_BYTES)" in big["error"]["reason"]
    assert missing["status"] == "failed" and "HTTP 404" in missing["error"]["reason"]
    assert missing["error"]["reason"].endswith(f"source '{base}/gone.wav': HTTP 404")


async def test_an_audio_job_may_name_source_urls_instead_of_a_body(api_factory: ApiFactory) -> None:
    api = await api_factory(run_worker=False, source_allow_networks=["127.0.0.1/32"])
    answer = await api.post("/v1/pipelines/audio/jobs", json={"source_urls": ["http://127.0.0.1:9/talk.wav"]})
    assert answer.status_code == 202, answer.text
    assert_problem(await api.post("/v1/pipelines/audio/jobs", json={}), 422, "invalid-input")
    batch = await api.post(
        "/v1/pipelines/audio/jobs:batch",
        json={"jobs": [{"input": {"source_urls": [f"http://127.0.0.1:9/{i}.wav"]}} for i in range(3)] + [{}]},
    )
    assert [("job" in e) for e in batch.json()["jobs"]] == [True, True, True, False]
