"""A fault-injecting HTTP proxy for registry tests: forwards to a real registry and, on chosen
requests, drops the connection, answers 500/503/429 (with Retry-After), loses the answer after the
registry acted on the request, stalls, or hangs past the client's timeout. Besides random faults it
takes deterministic rules: fail every write of one tag, or hold the k-th publishing tag write until
released (so a test can SIGKILL the client at that exact moment). Loopback only; stops with its
context manager. Every injected fault is logged with the time it happened."""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("drop", "500", "503", "429", "lost-answer", "stall")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
# A tag write of publishing: PUT of a manifest under a tag that is not a digest, a signature
# (`sha256-….sig`), a build's own tag (`sha-…`) or the input cache's (`inputs-…`).
_MANIFEST_PUT = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)$")


def publish_tag(method: str, path: str) -> tuple[str, str] | None:
    """(repository path, tag) if this request writes a release, floating or extra tag."""
    match = _MANIFEST_PUT.match(path)
    if method != "PUT" or match is None:
        return None
    ref = match.group("ref")
    if ref.startswith(("sha256:", "sha256-", "sha-", "inputs-")):
        return None
    return match.group("repo"), ref


@dataclass
class Hold:
    """Hold the `nth` publishing tag write (1-based) until `release` is set; `held` is set when it is."""

    nth: int
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    what: tuple[str, str] | None = None  # the (repository, tag) being held
    match: str | None = None  # hold instead the first write of this `repo/path:tag` (nth is then ignored)
    forward: bool = False  # once released, send the write on (else drop it: its client was killed)


@dataclass
class FaultPlan:
    """Which fault (if any) each request gets: random with a seed at `rate`, a rare `hang` (longer than
    the client's timeout) at `hang_rate`; plus deterministic rules (`fail_tags`, `hold`)."""

    rate: float = 0.0
    seed: int = 0
    stall_seconds: float = 1.5
    hang_rate: float = 0.0
    hang_seconds: float = 5.0
    fail_tags: set[str] = field(default_factory=set)  # every PUT of these (`tag` or `repo/path:tag`) answers 500
    # Every manifest PUT under one of these references (any tag, `sha256-….sig` included, or digest) answers 500.
    fail_references: set[str] = field(default_factory=set)
    # A manifest PUT with one of these Content-Types answers 400 MANIFEST_INVALID, as registries without
    # OCI image index support do.
    refuse_manifest_types: set[str] = field(default_factory=set)
    hold: Hold | None = None
    injected: list[tuple[str, str, str]] = field(default_factory=list)  # (fault, method, path)
    injected_at: list[float] = field(default_factory=list)  # time.monotonic() of each injection
    requests: int = 0
    publish_writes: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def _log(self, fault: str, method: str, path: str) -> str:
        self.injected.append((fault, method, path))
        self.injected_at.append(time.monotonic())
        return fault

    def injected_since(self, moment: float) -> list[tuple[str, str, str]]:
        with self._lock:
            return [item for item, at in zip(self.injected, self.injected_at, strict=True) if at >= moment]

    def choose(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests += 1
            written = _MANIFEST_PUT.match(path) if method == "PUT" else None
            if written is not None and written.group("ref") in self.fail_references:
                return self._log("fail-tag", method, path)
            tag = publish_tag(method, path)
            if tag is not None:
                self.publish_writes += 1
                if tag[1] in self.fail_tags or f"{tag[0]}:{tag[1]}" in self.fail_tags:
                    return self._log("fail-tag", method, path)
                hold = self.hold
                chosen = (
                    (f"{tag[0]}:{tag[1]}" == hold.match if hold.match is not None else self.publish_writes == hold.nth)
                    if hold is not None and not hold.held.is_set()
                    else False
                )
                if hold is not None and chosen:
                    self.hold.what = tag
                    return self._log("hold", method, path)
            if path in ("/v2/", "/v2"):
                return None
            if self.hang_rate and self._random.random() < self.hang_rate:
                return self._log("hang", method, path)
            if self._random.random() >= self.rate:
                return None
            return self._log(self._random.choice(FAULTS), method, path)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
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
            body = read_body(self)
            fault = plan.choose(self.command, self.path)
            content_type = self.headers.get("Content-Type", "")
            if self.command == "PUT" and "/manifests/" in self.path and content_type in plan.refuse_manifest_types:
                with plan._lock:
                    plan._log("refuse-type", self.command, self.path)
                return self._answer(
                    400,
                    {"Content-Type": "application/json"},
                    b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported"}]}',
                )
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
            if fault == "fail-tag":
                return self._answer(
                    500,
                    {"Content-Type": "application/json"},
                    b'{"errors":[{"code":"UNKNOWN","message":"injected: this tag cannot be written"}]}',
                )
            if fault == "hold" and plan.hold is not None:  # noqa: SIM102 - one rule per fault
                plan.hold.held.set()
                plan.hold.release.wait()
                if not plan.hold.forward:
                    return self._abort()  # the client was killed meanwhile: the write never reaches the registry
            if fault == "stall":
                time.sleep(plan.stall_seconds)
            if fault == "hang":  # longer than the client waits: it gives up and retries meanwhile
                time.sleep(plan.hang_seconds)
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


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hang up on us (that is half the point of this proxy): not worth a traceback.
        pass


@contextmanager
def fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[str]:
    """Serve on a free loopback port; yield its `127.0.0.1:PORT`."""
    host, port = upstream.rsplit(":", 1)
    with serving(_handler((host, int(port)), plan)) as address:
        yield address


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on a free loopback port in a thread; yield its `127.0.0.1:PORT`."""
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
