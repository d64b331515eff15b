"""A registry spoken to over plain HTTP costs no TLS context (reading the CA bundle: ~40 ms of a no-op
run's start): it is made for the first HTTPS request only, and verifies as before."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.common.http import httpx
from pipeline.registry import tls
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_reference


class Registry(BaseHTTPRequestHandler):
    """Answers every manifest HEAD with a digest, over plain HTTP."""

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD  # noqa: N815 (the probe's GET /v2/)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_plain_http_registry_is_reached_without_a_tls_context(registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = tls.ssl_context
    monkeypatch.setattr(tls, "ssl_context", lambda verify: made.append(verify) or real(verify))
    with RegistryClient(lambda _: None) as client:
        for n in range(3):
            assert client.resolve_digest(parse_reference(f"{registry}/shop/app{n}:1")) == "sha256:" + "0" * 64
        assert made == []
        # The same client's first HTTPS request (a redirect's target) makes the context, and it verifies:
        # this server speaks no TLS, so the handshake fails rather than going on unverified.
        https = client.session.connect(registry)
        with pytest.raises(httpx.TransportError):
            client.session._connections.client(https.verify).head(f"https://{registry}/v2/")
        assert made == [tls.SYSTEM]
        assert tls.ssl_context(tls.SYSTEM).verify_mode == ssl.CERT_REQUIRED
