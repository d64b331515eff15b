"""The HTTP side of `pipeline serve`: webhook deliveries in, the status page and its JSON API out.

The standard library's ThreadingHTTPServer is enough for webhook traffic and a status page, and
needs no extra dependency; requests only touch the SQLite queue, the runs happen in the Worker.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline.errors import UsageError
from pipeline.triggers.queue import Duplicate, RunQueue
from pipeline.triggers.statuspage import index_page, run_json, run_page
from pipeline.triggers.webhooks import DeliveryRejected, Ignored, read_delivery
from pipeline.triggers.worker import Scrubber, Worker, WorkerSettings

MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
MAX_LOG_SERVED = 2 * 1024 * 1024
_RUN_PATH = re.compile(r"^/(api/)?runs/(\d+)$")


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    state_dir: Path
    secret: bytes | None  # None: deliveries are not authenticated (--insecure-no-secret)
    worker: WorkerSettings


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client must not hold up shutdown

    def __init__(
        self, settings: ServeSettings, queue: RunQueue, worker: Worker, scrub: Scrubber, log: Callable[[str], None]
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.worker = worker
        self.scrub = scrub
        self.log = log
        super().__init__((settings.host, settings.port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    server_version = "pipeline-serve"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        self.server.log(f"{self.address_string()} {format % args}")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if urlsplit(self.path).path != "/webhook":
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found: deliveries go to POST /webhook"})
            return
        body = self._body()
        if body is None:
            return
        headers = {name: value for name, value in self.headers.items()}
        try:
            delivery = read_delivery(headers, body, self.server.settings.secret)
        except DeliveryRejected as exc:
            self.server.log(f"rejected delivery from {self.address_string()}: {exc}")
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
        self.server.log(
            f"run {outcome.run_id} queued: {delivery.source} {delivery.ref} "
            f"{delivery.before[:12]}..{delivery.after[:12]} ({delivery.delivery_id})"
        )
        self.server.worker.wake()
        self._json(HTTPStatus.ACCEPTED, {"status": "queued", "run": outcome.run_id})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        queue = self.server.queue
        if url.path == "/healthz":
            counts = queue.counts()
            self._json(HTTPStatus.OK, {"ok": True, "queued": counts["queued"], "running": counts["running"]})
        elif url.path == "/":
            page = index_page(queue.recent(50), queue.counts(), self.server.settings.worker.repo)
            self._html(HTTPStatus.OK, page)
        elif url.path == "/api/runs":
            limit = _int(parse_qs(url.query).get("limit", ["50"])[0], default=50, top=1000)
            self._json(HTTPStatus.OK, {"runs": [run_json(run) for run in queue.recent(limit)]})
        elif match := _RUN_PATH.match(url.path):
            run = queue.get(int(match.group(2)))
            if run is None:
                self._not_found(f"no run {match.group(2)}", api=bool(match.group(1)))
            elif match.group(1):
                self._json(HTTPStatus.OK, run_json(run))
            else:
                self._html(HTTPStatus.OK, run_page(run, self._log_text(run.log_path)))
        else:
            self._not_found(f"no page {url.path}", api=url.path.startswith("/api/"))

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return None
        if int(length) > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"bodies are limited to {MAX_BODY} bytes"})
            return None
        return self.rfile.read(int(length))

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
        # The worker scrubs as it writes; scrubbing again costs little and covers older files.
        text = self.server.scrub(text)
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


def _int(text: str, default: int, top: int) -> int:
    return min(int(text), top) if text.isdigit() and int(text) > 0 else default


class Service:
    """The queue, the worker and the HTTP server, started and stopped together."""

    def __init__(self, settings: ServeSettings, scrub: Scrubber, log: Callable[[str], None]) -> None:
        self.settings = settings
        self.log = log
        self.queue = RunQueue(settings.state_dir / "serve.sqlite3")
        self.worker = Worker(self.queue, settings.worker, scrub, log)
        try:
            self.http = WebhookServer(settings, self.queue, self.worker, scrub, log)
        except OSError as exc:
            self.queue.close()
            raise UsageError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} (choose another --port)"
            ) from None
        self._http_thread = threading.Thread(target=self.http.serve_forever, name="pipeline-serve-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        for run_id in self.queue.requeue_interrupted():
            self.log(f"run {run_id} was interrupted by a previous stop: queued again")
        self.worker.start()
        self._http_thread.start()

    def stop(self) -> None:
        """Stop accepting deliveries, then let the current run finish (or terminate it after the timeout)."""
        self.http.shutdown()
        self.http.server_close()
        self.worker.stop()
        self.worker.join()
        self.queue.close()
