"""A fault-injecting HTTP proxy for registry tests: forwards to a real registry and, on chosen
requests, drops the connection, answers 500/503/429 (with Retry-After), loses the answer after the
registry acted on the request, or stalls. Loopback only; stops with its context manager."""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("drop", "500", "503", "429", "lost-answer", "stall")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class FaultPlan:
    """Which fault (if any) each request gets: random with a seed, at `rate`."""

    rate: float = 0.0
    seed: int = 0
    stall_seconds: float = 1.5
    injected: list[tuple[str, str, str]] = field(default_factory=list)  # (fault, method, path)
    requests: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def choose(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests += 1
            if path in ("/v2/", "/v2") or self._random.random() >= self.rate:
                return None
            fault = self._random.choice(FAULTS)
            self.injected.append((fault, method, path))
            return fault


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _handler(upstream: tuple[str, int], plan: FaultPlan) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _abort(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            body = _read_body(self)
            fault = plan.choose(self.command, self.path)
            if fault == "drop":
                return self._abort()
            if fault in ("500", "503"):
                return self._answer(
                    int(fault),
                    {"Content-Type": "application/json"},
                    b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}',
                )
            if fault == "429":
                return self._answer(
                    429,
                    {"Retry-After": "1", "Content-Type": "application/json"},
                    b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault"}]}',
                )
            if fault == "stall":
                time.sleep(plan.stall_seconds)
            connection = http.client.HTTPConnection(*upstream, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            connection.close()
            if fault == "lost-answer":  # the registry acted, the client never hears of it
                return self._abort()
            out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}}
            self._answer(response.status, out, data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    return Proxy


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hang up on us (that is half the point of this proxy): not worth a traceback.
        pass


@contextmanager
def fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[str]:
    """Serve on a free loopback port; yield its `127.0.0.1:PORT`."""
    host, port = upstream.rsplit(":", 1)
    server = _QuietServer(("127.0.0.1", 0), _handler((host, int(port)), plan))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
