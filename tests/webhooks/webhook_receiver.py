"""A webhook receiver on loopback for the tests: a real HTTP server in a thread that records every request and
can fail the first N attempts of each message (500) or hold a request until the test releases it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status we answered, None when the connection was dropped


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # per webhook-id: answer 500 to this many attempts
    hold_first: bool = False  # hold the very first request until ``release`` is set, then drop it
    requests: list[Received] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempts_of(self, message_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.headers.get("webhook-id") == message_id]

    def acknowledged(self) -> list[Received]:
        """Requests we answered with a 2xx: deliveries."""
        with self.lock:
            return [r for r in self.requests if r.answered is not None and 200 <= r.answered < 300]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                first = not receiver.requests
                earlier = sum(1 for r in receiver.requests if r.headers.get("webhook-id") == headers.get("webhook-id"))
                record = Received(headers, body, None)
                receiver.requests.append(record)
            if first and receiver.hold_first:
                receiver.held.set()
                receiver.release.wait(30)
                self.close_connection = True  # no answer: this delivery did not happen
                return
            status = 500 if earlier < receiver.fail_first else 204
            record.answered = status
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(**options: object) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("")))
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks", **options)  # type: ignore[arg-type]
    server.RequestHandlerClass = _handler(receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
