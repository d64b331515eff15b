"""The HTTP side of `pipeline serve`: webhook deliveries in, the status page and its JSON API out.

The standard library's ThreadingHTTPServer is enough for webhook traffic and a status page, and
needs no extra dependency; requests only touch the SQLite queue, the runs happen in the Worker.
Its handlers have no limits of their own, so `ServerLimits` adds them: a deadline for reading each
request, a body cap, and a cap on connections served at once (beyond it: 503, /healthz still answered).
A connection takes a slot only once its request starts to arrive (until then it waits in the Lobby),
so idle connections cannot starve deliveries.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.common.reporting import Reporter
from pipeline.errors import UsageError
from pipeline.redaction import Redactor
from pipeline.triggers.lobby import Arrival, Lobby
from pipeline.triggers.queue import Duplicate, RunQueue
from pipeline.triggers.registry_hooks import HOOKS_PREFIX, BaseUpdate, RegistryEndpoints, read_notification
from pipeline.triggers.statuspage import find_image, image_page, index_page, run_json, run_page
from pipeline.triggers.webhooks import DeliveryRejected, Ignored, read_delivery
from pipeline.triggers.worker import Worker, WorkerSettings

MAX_LOG_SERVED = 2 * 1024 * 1024
_RUN_PATH = re.compile(r"^/(api/)?runs/([0-9]+)$")
_IMAGE_PATH = re.compile(r"^/runs/([0-9]+)/images/(.+)$")  # the image key (pipeline/name) keeps its slash
# A connection beyond the cap gets this long to say whether it is a health probe, then 503.
_BUSY_WAIT = 1.0
_BUSY_RETRY_AFTER = 5


@dataclass(frozen=True)
class ServerLimits:
    # Every request (line, headers, body) must arrive within this many seconds of the connection.
    read_timeout: float = 10.0
    # GitHub sends payloads up to 25 MB (larger events are not delivered at all); a lower cap would
    # answer 413 to a real push and lose it. Memory is bounded by max_body x max_connections.
    max_body: int = 25 * 1024 * 1024
    max_connections: int = 16  # served at once; as many more may wait a second for a slot, the rest queue
    # Connections that wait for their request to start (idle: they hold no thread); beyond, the oldest
    # idle one is closed.
    max_waiting: int = 512


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    state_dir: Path
    secret: bytes | None  # None: deliveries are not authenticated (--insecure-no-secret)
    worker: WorkerSettings
    limits: ServerLimits = ServerLimits()
    registry: RegistryEndpoints = RegistryEndpoints({})  # none served unless configured with a secret


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that gives up at a deadline, however slowly the bytes trickle in
    (a socket timeout alone restarts with every byte)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request was not received in time")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client must not hold up shutdown
    request_queue_size = 128  # the listen backlog, where connections wait while every slot is taken

    def __init__(
        self, settings: ServeSettings, queue: RunQueue, worker: Worker, redactor: Redactor, log: Reporter
    ) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.queue = queue
        self.worker = worker
        self.redactor = redactor
        self.log = log
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._busy_slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._accepted_at: dict[socket.socket, float] = {}  # for each connection's read deadline
        self._serving = 0
        self._count_lock = threading.Lock()
        super().__init__((settings.host, settings.port), _Handler)
        self.lobby = Lobby(
            self._dispatch,
            lambda arrival: self.shutdown_request(arrival.sock),
            self._refuse,
            timeout=self.limits.read_timeout,
            capacity=self.limits.max_waiting,
            log=log,
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        """Accepting never waits: the connection waits in the lobby until its request starts to arrive."""
        self.lobby.admit(Arrival(request, client_address, time.monotonic()))

    def _dispatch(self, arrival: Arrival) -> bool:
        """A connection whose request is arriving: one thread each, at most max_connections of them
        serving; as many more wait for a slot (a health probe is answered at once) and get 503 after a
        second. Beyond those it stays in the lobby (False), until a slot frees or its read deadline."""
        if self._slots.acquire(blocking=False):
            serve, slot = self.finish_request, self._slots
        elif self._busy_slots.acquire(blocking=False):
            serve, slot = self._answer_busy, self._busy_slots
        else:
            return False
        with self._count_lock:
            self._accepted_at[arrival.sock] = arrival.accepted_at
        args = (serve, slot, arrival.sock, arrival.address)
        threading.Thread(target=self._serve, args=args, daemon=True).start()
        return True

    def read_deadline(self, sock: socket.socket) -> float:
        """When the request on `sock` must be in: read_timeout after the connection was accepted."""
        with self._count_lock:
            accepted = self._accepted_at.pop(sock, time.monotonic())
        return accepted + self.limits.read_timeout

    def connection_counts(self) -> dict[str, int]:
        """Connections waiting in the lobby (nothing received yet, or no slot free) and being served."""
        with self._count_lock:
            serving = self._serving
        return {"waiting": self.lobby.waiting(), "serving": serving}

    def server_close(self) -> None:
        self.lobby.close()
        super().server_close()

    def _serve(
        self,
        serve: Callable[[Any, Any], None],
        slot: threading.BoundedSemaphore,
        request: Any,
        client_address: Any,
    ) -> None:
        counted = slot is self._slots
        if counted:
            with self._count_lock:
                self._serving += 1
        try:
            serve(request, client_address)
        except Exception:  # socketserver's own policy: report it and serve the next one
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._count_lock:
                self._accepted_at.pop(request, None)
                self._serving -= counted
            slot.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer is one line, not a traceback; anything else is a bug: reported in full."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self.log.say(f"{client_address[0]}: connection lost: {error.strerror or error}")
            return
        super().handle_error(request, client_address)

    def _answer_busy(self, request: Any, client_address: Any) -> None:
        """A health probe is served on this connection's overflow slot; anything else waits (up to a
        second) for a serving slot to free up, which under real traffic takes milliseconds, else 503."""
        deadline = time.monotonic() + _BUSY_WAIT
        line = _peek_line(request, deadline)
        if line.split(b" ")[:2] == [b"GET", b"/healthz"]:
            self.finish_request(request, client_address)
            return
        if self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self.finish_request(request, client_address)
            finally:
                self._slots.release()
            return
        if self._answer_503(request):
            self.log.say(f"{client_address[0]} busy: answered 503 to {line[:80]!r}")

    def _refuse(self, arrival: Arrival) -> None:
        """A connection that waited in the lobby, ready, until its read deadline without a slot."""
        if self._answer_503(arrival.sock):
            self.log.say(f"{arrival.address[0]} busy: answered 503 (no slot within {self.limits.read_timeout:g}s)")
        self.shutdown_request(arrival.sock)

    def _answer_503(self, sock: socket.socket) -> bool:
        payload = (json.dumps({"error": f"busy: {self.limits.max_connections} connections open; retry later"})).encode()
        response = (
            "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nRetry-After: {_BUSY_RETRY_AFTER}\r\nConnection: close\r\n\r\n"
        )
        try:
            sock.settimeout(_BUSY_WAIT)
            sock.sendall(response.encode() + payload)
        except OSError:
            return False
        return True


def _peek_line(sock: socket.socket, deadline: float) -> bytes:
    """The request line as far as it has arrived by `deadline`, left unread for the handler."""
    seen = b""
    while b"\n" not in seen and len(seen) < 1024 and (remaining := deadline - time.monotonic()) > 0:
        try:
            sock.settimeout(remaining)
            data = sock.recv(1024, socket.MSG_PEEK)
        except OSError:  # TimeoutError included
            break
        if not data:
            break
        if data == seen:
            time.sleep(0.01)  # a peek returns at once what is already there: wait for more
        seen = data
    return seen


def health(queue: RunQueue) -> dict[str, Any]:
    counts = queue.counts()
    return {"ok": True, "queued": counts["queued"], "running": counts["running"]}


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "pipeline-serve"

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain socket file StreamRequestHandler made: reads go through the deadline
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.server.read_deadline(self.connection)))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        # The request line names Docker Hub's URL secret: redacted like everything else serve logs.
        self.server.log.say(self.server.redactor.text(f"{self.address_string()} {format % args}"))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._headers_read()
        path = urlsplit(self.path).path
        if path.startswith(HOOKS_PREFIX):
            self._registry_notification(path)
            return
        if path != "/webhook":
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found: deliveries go to POST /webhook"})
            return
        body = self._body()
        if body is None:
            return
        headers = {name: value for name, value in self.headers.items()}
        try:
            delivery = read_delivery(headers, body, self.server.settings.secret)
        except DeliveryRejected as exc:
            self.server.log.say(f"rejected delivery from {self.address_string()}: {exc}")
            self._json(HTTPStatus(exc.http_status), {"status": "rejected", "error": str(exc)})
            return
        queue = self.server.queue
        if isinstance(delivery, Ignored):
            seen = queue.record_ignored(delivery)
            status = "duplicate" if seen is not None else "ignored"
            self._json(HTTPStatus.OK, {"status": status, "reason": delivery.reason})
            return
        outcome = queue.enqueue(delivery)
        if isinstance(outcome, Duplicate):
            self._json(HTTPStatus.OK, {"status": "duplicate", "run": outcome.run_id})
            return
        self.server.log.say(
            f"run {outcome.run_id} queued: {delivery.source} {delivery.ref} "
            f"{delivery.before[:12]}..{delivery.after[:12]} ({delivery.delivery_id})"
        )
        self.server.worker.wake()
        self._json(HTTPStatus.ACCEPTED, {"status": "queued", "run": outcome.run_id})

    def _registry_notification(self, path: str) -> None:
        """A registry's push notification: each image pushed is a base update run, queued (202) unless every
        event is ignored or a duplicate (200); nothing is queued for a rejected one (401, 400, 404)."""
        body = self._body()
        if body is None:
            return
        headers = {name: value for name, value in self.headers.items()}
        registry = self.server.settings.registry
        try:
            events = read_notification(registry, path, headers, body)
        except DeliveryRejected as exc:
            self.server.log.say(f"rejected registry notification from {self.address_string()}: {exc}")
            self._json(HTTPStatus(exc.http_status), {"status": "rejected", "error": str(exc)})
            return
        answers: list[dict[str, Any]] = []
        for event in events:
            if not isinstance(event, BaseUpdate):
                # Not remembered: a registry notifies every pull, and a repeat of one runs nothing anyway.
                answers.append({"id": event.delivery_id, "status": "ignored", "reason": event.reason})
                continue
            outcome = self.server.queue.enqueue_base(event, registry.ref)
            if isinstance(outcome, Duplicate):
                answers.append({"id": event.delivery_id, "status": "duplicate", "run": outcome.run_id})
                continue
            self.server.log.say(
                f"run {outcome.run_id} queued: base update {event.reference} {event.digest or ''} ({event.delivery_id})"
            )
            answers.append({"id": event.delivery_id, "status": "queued", "run": outcome.run_id})
        queued = any(answer["status"] == "queued" for answer in answers)
        if queued:
            self.server.worker.wake()
        status = "queued" if queued else "duplicate" if any(a["status"] == "duplicate" for a in answers) else "ignored"
        self._json(HTTPStatus.ACCEPTED if queued else HTTPStatus.OK, {"status": status, "events": answers})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._headers_read()
        url = urlsplit(self.path)
        queue = self.server.queue
        if url.path == "/healthz":
            self._json(HTTPStatus.OK, health(queue))
        elif url.path == "/":
            page = index_page(queue.recent(50), queue.counts(), self.server.settings.worker.repo)
            self._html(HTTPStatus.OK, page)
        elif url.path == "/api/runs":
            limit = _int(parse_qs(url.query).get("limit", ["50"])[0], default=50, top=1000)
            self._json(HTTPStatus.OK, {"runs": [run_json(run) for run in queue.recent(limit)]})
        elif match := _RUN_PATH.match(url.path):
            run = queue.get(_run_id(match.group(2)))
            if run is None:
                self._not_found(f"no run {match.group(2)}", api=bool(match.group(1)))
            elif match.group(1):
                self._json(HTTPStatus.OK, run_json(run))
            else:
                self._html(HTTPStatus.OK, run_page(run, self._log_text(run.log_path)))
        elif match := _IMAGE_PATH.match(url.path):
            self._image(_run_id(match.group(1)), unquote(match.group(2)))
        else:
            self._not_found(f"no page {url.path}", api=url.path.startswith("/api/"))

    def _image(self, run_id: int, key: str) -> None:
        run = self.server.queue.get(run_id)
        image = find_image(run, key) if run is not None else None
        if run is None or image is None:
            self._not_found(f"no image {key} in run {run_id}", api=False)
            return
        self._html(HTTPStatus.OK, image_page(run, image, self._log_text(run.log_path)))

    def _body(self) -> bytes | None:
        """The body, or None once the client is answered (or dropped) for not sending it properly."""
        length = self.headers.get("Content-Length")
        limit = self.server.limits.max_body
        if length is None or not length.isascii() or not length.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return None
        if len(length) > 18 or int(length) > limit:  # answered before a byte of the body is read
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"bodies are limited to {limit} bytes"})
            return None
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            body = b""
        if len(body) < int(length):
            self.close_connection = True
            timeout = self.server.limits.read_timeout
            self.server.log.say(f"dropped {self.address_string()}: the request was not received within {timeout:g}s")
            self._json(HTTPStatus.REQUEST_TIMEOUT, {"error": f"the body was not received within {timeout:g}s"})
            return None
        return body

    def _headers_read(self) -> None:
        # The read deadline left the socket's timeout at whatever remained of it; the answer gets its own
        # (reading the body sets it back to the deadline's remainder).
        self.connection.settimeout(self.server.limits.read_timeout)

    def _log_text(self, log_path: str | None) -> str | None:
        if not log_path:
            return None
        try:
            with open(log_path, "rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - MAX_LOG_SERVED))
                data = f.read()
        except OSError:
            return None
        text = data.decode("utf-8", "replace")
        # The worker redacts as it writes; redacting again costs little and covers older files.
        text = self.server.redactor.text(text)
        return f"[... first {size - MAX_LOG_SERVED} bytes not shown ...]\n{text}" if size > MAX_LOG_SERVED else text

    def _not_found(self, message: str, api: bool) -> None:
        if api:
            self._json(HTTPStatus.NOT_FOUND, {"error": message})
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"{message}\n".encode())

    def _json(self, status: HTTPStatus, data: dict[str, Any]) -> None:
        self._send(status, "application/json", (json.dumps(data) + "\n").encode())

    def _html(self, status: HTTPStatus, page: str) -> None:
        self._send(status, "text/html; charset=utf-8", page.encode())

    def _send(self, status: HTTPStatus, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)


def _run_id(digits: str) -> int:
    """A run id from a path; one no run can have (beyond SQLite's integers, or too long for `int`) is 0,
    which names no run either, so the answer is a 404."""
    return int(digits) if len(digits) <= 18 else 0


def _int(text: str, default: int, top: int) -> int:
    return min(int(text), top) if text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0 else default


class Service:
    """The queue, the worker and the HTTP server, started and stopped together."""

    def __init__(self, settings: ServeSettings, redactor: Redactor, log: Reporter) -> None:
        self.settings = settings
        self.log = log
        self.queue = RunQueue(settings.state_dir / "serve.sqlite3")
        self.worker = Worker(self.queue, settings.worker, redactor, log)
        try:
            self.http = WebhookServer(settings, self.queue, self.worker, redactor, log)
        except OSError as exc:
            self.queue.close()
            raise UsageError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} (choose another --port)"
            ) from None
        self._http_thread = threading.Thread(target=self.http.serve_forever, name="pipeline-serve-http", daemon=True)
        self.worker.page_url = settings.worker.public_url or self.url

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        for run_id in self.queue.requeue_interrupted():
            self.log.say(f"run {run_id} was interrupted by a previous stop: queued again")
        self.worker.start()
        self._http_thread.start()

    def stop(self) -> None:
        """Stop accepting deliveries, then let the current run finish (or terminate it after the timeout)."""
        self.http.shutdown()
        self.http.server_close()
        self.worker.stop()
        self.worker.join()
        self.queue.close()
