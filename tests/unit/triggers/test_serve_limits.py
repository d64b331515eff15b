"""`pipeline serve`'s HTTP side under slow, stalled and oversized clients, over real loopback sockets."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pipeline.common.reporting import SILENT
from pipeline.redaction import Redactor
from pipeline.triggers.server import ServerLimits, ServeSettings, Service
from pipeline.triggers.webhooks import signature_header
from pipeline.triggers.worker import WorkerSettings

SECRET = b"limits-test-secret"
LIMITS = ServerLimits(read_timeout=2.0, max_body=4096, max_connections=3)


@contextmanager
def serving(tmp_path: Path, limits: ServerLimits) -> Iterator[Service]:
    # The worker's command never runs: nothing these tests send is queued except in the last one,
    # and that one only needs to be queued.
    worker = WorkerSettings(repo=str(tmp_path), runs_dir=tmp_path / "runs", command=(sys.executable, "-c", "pass"))
    settings = ServeSettings("127.0.0.1", 0, tmp_path / "state", SECRET, worker, limits)
    running = Service(settings, Redactor([]), SILENT)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with serving(tmp_path, LIMITS) as running:
        yield running


def connect(service: Service) -> socket.socket:
    host, port = service.http.server_address[:2]
    return socket.create_connection((str(host), port), timeout=10)


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic()


def healthz(service: Service) -> int:
    return httpx.get(f"{service.url}/healthz", timeout=2).status_code


def test_a_stalled_body_is_dropped_within_the_read_timeout_while_healthz_answers(service: Service) -> None:
    stalled = connect(service)
    started = time.monotonic()
    stalled.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b"{" * 100)
    assert healthz(service) == 200  # meanwhile
    data, closed = read_until_closed(stalled, timeout=LIMITS.read_timeout + 5)
    assert data.startswith(b"HTTP/1.0 408 "), data
    assert closed - started < LIMITS.read_timeout + 1.0
    assert service.queue.counts()["queued"] == 0


def test_headers_trickling_in_are_dropped_at_the_deadline_not_per_byte(service: Service) -> None:
    # Each byte well within a per-read timeout: only a deadline for the whole request stops this.
    slow = connect(service)
    started = time.monotonic()
    request = b"GET /healthz HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 200
    with pytest.raises(OSError):  # the server hangs up while we are still sending
        for byte in request:
            slow.sendall(bytes([byte]))
            time.sleep(0.05)
            assert time.monotonic() - started < LIMITS.read_timeout + 3, "still connected after the read timeout"
        slow.recv(1)
        slow.sendall(b"x")
    assert time.monotonic() - started < LIMITS.read_timeout + 1.0


@pytest.mark.parametrize("length", [LIMITS.max_body + 1, 10**12])
def test_an_oversized_body_is_refused_with_413_before_it_is_read(service: Service, length: int) -> None:
    client = connect(service)
    started = time.monotonic()
    client.sendall(f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    data, closed = read_until_closed(client, timeout=5)  # no body sent: a server reading it would wait
    assert data.startswith(b"HTTP/1.0 413 "), data
    assert f"limited to {LIMITS.max_body} bytes".encode() in data
    assert closed - started < 1.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll `condition` until it holds, failing with `what` at the deadline (no sleep guessing how long)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.01)


def _signed_delivery(service: Service, delivery_id: str, timeout: float = 5) -> httpx.Response:
    body = json.dumps({"ref": "refs/heads/main", "before": "1" * 40, "after": "2" * 40, "id": delivery_id}).encode()
    headers = {"X-Hub-Signature-256": signature_header(SECRET, body)}
    return httpx.post(f"{service.url}/webhook", content=body, headers=headers, timeout=timeout)


def test_more_slow_clients_than_the_cap_get_503_and_healthz_still_answers(service: Service) -> None:
    k = 2
    started = time.monotonic()
    # Slow clients: their headers are in, their bodies stall. They hold every serving slot.
    serving = [connect(service) for _ in range(LIMITS.max_connections)]
    for client in serving:
        client.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b"{" * 100)
    counts = service.http.connection_counts
    wait_until(lambda: counts()["serving"] == LIMITS.max_connections, "the slow clients hold every slot")
    excess = [connect(service) for _ in range(k)]
    for client in excess:
        client.sendall(b"POST /webhook HTTP/1.1\r\n")
    # A probe beyond the cap is still answered, at once, with the queue's counts.
    probe = connect(service)
    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data, _ = read_until_closed(probe, timeout=3)
    assert data.startswith(b"HTTP/1.0 200 "), data
    assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == {"ok": True, "queued": 0, "running": 0}
    # The excess requests are told to come back later, within about a second.
    for client in excess:
        data, closed = read_until_closed(client, timeout=5)
        assert data.startswith(b"HTTP/1.0 503 ") and b"Retry-After: 5" in data, data
        assert closed - started < 2.5
    # The slow ones holding the slots are dropped at the read timeout ...
    for client in serving:
        data, closed = read_until_closed(client, timeout=LIMITS.read_timeout + 5)
        assert data.startswith(b"HTTP/1.0 408 "), data
        assert closed - started < LIMITS.read_timeout + 1.5
    # ... and the server serves deliveries again.
    response = _signed_delivery(service, "after-flood")
    assert response.status_code == 202, response.text


def test_idle_connections_do_not_starve_a_signed_delivery(tmp_path: Path) -> None:
    # The defaults: 16 served at once, 10 s to send a request. 100 connections that send nothing ...
    with serving(tmp_path, ServerLimits()) as service:
        idle = [connect(service) for _ in range(100)]
        try:
            # ... and then a delivery: it is served (not 503, not left waiting behind them).
            response = _signed_delivery(service, "behind-idle", timeout=8)
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "queued"
            # The idle ones hold no serving slot: they wait, each until its read timeout.
            counts = service.http.connection_counts
            wait_until(lambda: counts() == {"waiting": 100, "serving": 0}, f"only the idle ones wait: {counts()}")
            response = _signed_delivery(service, "behind-idle-2", timeout=8)
            assert response.status_code == 202, response.text
        finally:
            for client in idle:
                client.close()


def test_idle_connections_beyond_the_waiting_room_close_the_oldest_first(tmp_path: Path) -> None:
    limits = ServerLimits(read_timeout=10.0, max_connections=2, max_waiting=5)
    with serving(tmp_path, limits) as service:
        idle = [connect(service) for _ in range(8)]
        try:
            # The three oldest are closed (the server hangs up: end of input), the newest five wait.
            for client in idle[:3]:
                assert read_until_closed(client, timeout=5)[0] == b""
            wait_until(lambda: service.http.connection_counts()["waiting"] == 5, "five connections wait")
            assert _signed_delivery(service, "past-the-waiting-room").status_code == 202
        finally:
            for client in idle:
                client.close()


def test_a_burst_of_quick_deliveries_beyond_the_cap_is_served_not_refused(service: Service) -> None:
    def deliver(n: int) -> int:
        body = json.dumps({"ref": f"refs/heads/b{n}", "before": "1" * 40, "after": "2" * 40, "id": f"q{n}"})
        headers = {"X-Hub-Signature-256": signature_header(SECRET, body.encode())}
        return httpx.post(f"{service.url}/webhook", content=body, headers=headers, timeout=10).status_code

    # Never more at once than served plus waiting: beyond those a connection is closed by design.
    with ThreadPoolExecutor(max_workers=LIMITS.max_connections * 2) as pool:
        codes = list(pool.map(deliver, range(LIMITS.max_connections * 8)))
    assert codes == [202] * len(codes)


def _exchange(service: Service, request: bytes) -> bytes:
    client = connect(service)
    client.sendall(request)
    data, _ = read_until_closed(client, timeout=10)
    return data


def test_json_nested_too_deeply_is_answered_400_without_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    body = b"[" * 100_000  # json.loads recurses once per bracket: RecursionError, not a JSONDecodeError
    headers = {"X-Hub-Signature-256": signature_header(SECRET, body)}
    with serving(tmp_path, ServerLimits(read_timeout=5.0, max_body=len(body), max_connections=3)) as service:
        response = httpx.post(f"{service.url}/webhook", content=body, headers=headers, timeout=10)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "the body is not a push: its JSON is nested too deeply to read"
        assert service.queue.counts()["queued"] == 0
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "path",
    [
        "/runs/99999999999999999999999",  # beyond SQLite's integers: OverflowError when bound
        "/api/runs/99999999999999999999999",
        "/runs/99999999999999999999999/images/shop/app",
        "/runs/" + "9" * 5000,  # beyond what int() reads from text: ValueError
    ],
)
def test_a_run_id_no_run_can_have_is_404_without_a_traceback(
    service: Service, capfd: pytest.CaptureFixture[str], path: str
) -> None:
    data = _exchange(service, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert data.startswith(b"HTTP/1.0 404 "), data[:200]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("length", ["\N{SUPERSCRIPT TWO}", "1" * 5000])  # str.isdigit, yet int() refuses both
def test_a_content_length_int_cannot_read_is_answered_not_a_traceback(
    service: Service, capfd: pytest.CaptureFixture[str], length: str
) -> None:
    request = f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    data = _exchange(service, request.encode("latin-1"))  # how http.server decodes header bytes
    assert data.startswith((b"HTTP/1.0 411 ", b"HTTP/1.0 413 ")), data[:200]
    assert "Traceback" not in capfd.readouterr().err
