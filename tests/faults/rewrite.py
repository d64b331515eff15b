"""A loopback HTTP proxy in front of a real registry that lets a test change what a client is told or
act at a chosen moment: answer another (real) manifest for a tag the client just pushed, or run an
action (another client moving a tag) when the first blob request arrives. Everything else is
forwarded unchanged; the rules record what they did so a test can check that they fired."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Protocol

from tests.faults.proxy import read_body, serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<reference>[^/?]+)(?P<query>\?.*)?$")


class Rule(Protocol):
    def forward(self, method: str, path: str) -> str:
        """Called before forwarding: the path to send upstream (the same one to leave it alone)."""
        ...

    def answered(self, method: str, path: str, status: int) -> None:
        """Called after the registry answered the request (with the path the client sent)."""
        ...


@dataclass
class ReadBackRewrite:
    """Once a client has PUT a manifest under a tag starting with `tag_prefix` in a repository of
    `answers` (repository path -> digest), every later HEAD/GET of that tag is answered with the
    manifest of the digest named there: the registry seems to hold another image under the tag."""

    answers: Mapping[str, str]
    tag_prefix: str = "sha-"
    pushed: set[tuple[str, str]] = field(default_factory=set)
    rewritten: list[tuple[str, str]] = field(default_factory=list)  # (method, path) answered with another digest

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _target(self, path: str) -> tuple[str, str] | None:
        match = MANIFEST_PATH.match(path)
        if not match or match["repo"] not in self.answers or not match["reference"].startswith(self.tag_prefix):
            return None
        return match["repo"], match["reference"]

    def forward(self, method: str, path: str) -> str:
        target = self._target(path)
        with self._lock:
            if method not in ("HEAD", "GET") or target is None or target not in self.pushed:
                return path
            self.rewritten.append((method, path))
        return f"/v2/{target[0]}/manifests/{self.answers[target[0]]}"

    def answered(self, method: str, path: str, status: int) -> None:
        target = self._target(path)
        if method == "PUT" and target is not None and 200 <= status < 300:
            with self._lock:
                self.pushed.add(target)


@dataclass
class OnFirstBlob:
    """Runs `action` once, before forwarding the first request for a blob (a HEAD, GET, or an upload
    or mount under `/blobs/`), so it happens while a copy is under way."""

    action: Callable[[], None]
    fired_on: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def forward(self, method: str, path: str) -> str:
        if "/blobs/" in path:
            with self._lock:  # held while the action runs: no other blob request overtakes it
                if self.fired_on is None:
                    self.fired_on = (method, path)
                    self.action()
        return path

    def answered(self, method: str, path: str, status: int) -> None:
        pass


def _handler(upstream: tuple[str, int], rules: list[Rule]) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _handle(self) -> None:
            body = read_body(self)
            path = self.path
            for rule in rules:
                path = rule.forward(self.command, path)
            connection = http.client.HTTPConnection(*upstream, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            connection.close()
            for rule in rules:
                rule.answered(self.command, self.path, response.status)
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            # A HEAD answer keeps the upstream's length (the size of the manifest it describes).
            length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    return Proxy


@contextmanager
def rewrite_proxy(upstream: str, *rules: Rule) -> Iterator[str]:
    """Serve on a free loopback port in front of `upstream` (`host:port`); yield `127.0.0.1:PORT`."""
    host, port = upstream.rsplit(":", 1)
    with serving(_handler((host, int(port)), list(rules))) as address:
        yield address
