"""A local webhook receiver for notification tests: http.server on 127.0.0.1 in a thread that records
every request (path, headers, raw body) and answers from a script of status codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """The X-Pipeline-Signature-256 header is the HMAC-SHA256 of the raw body, as a receiver checks it."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-pipeline-signature-256", ""))


class Receiver:
    """`statuses` are answered in order (the last one repeats), each with `headers` (`Location`,
    `Retry-After`); `hang` seconds of silence before each answer (a receiver that never answers in time)."""

    def __init__(
        self, statuses: tuple[int, ...] = (200,), hang: float = 0.0, headers: Mapping[str, str] | None = None
    ) -> None:
        self.statuses = list(statuses)
        self.hang = hang
        self.headers = dict(headers or {})
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                if receiver.hang:
                    receiver._stop.wait(receiver.hang)
                try:
                    self.send_response(status)
                    for name, value in receiver.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up first

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]


@contextmanager
def receiving(
    statuses: tuple[int, ...] = (200,), hang: float = 0.0, headers: Mapping[str, str] | None = None
) -> Iterator[Receiver]:
    receiver = Receiver(statuses, hang, headers)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
