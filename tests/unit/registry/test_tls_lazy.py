"""A registry spoken to over plain HTTP costs no TLS context (reading the CA bundle: ~40 ms of a no-op
run's start): it is made for the first HTTPS request only, and verifies as before."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.common.http import httpx
from pipeline.registry import tls
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_reference
from pipeline.registry.tls import TlsRefused
from tests.certs import self_signed_certificate

DIGEST = "sha256:" + "0" * 64


class Registry(BaseHTTPRequestHandler):
    """Answers every manifest HEAD with a digest; a blob's GET is redirected to `blobs` (the server's
    attribute: an HTTPS store, as registries send blobs to S3)."""

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        blobs = getattr(self.server, "blobs", None)
        if blobs and "/blobs/" in self.path:
            self.send_response(307)
            self.send_header("Location", f"https://{blobs}{self.path}")
        else:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD  # noqa: N815 (the probe's GET /v2/)

    def log_message(self, *args: object) -> None:
        pass


def serve(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server whose certificate is self-signed: no system CA vouches for it."""
    cert, key = self_signed_certificate(tmp_path, "not a trusted CA", "blobs")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from serve(server)


@pytest.fixture
def registry(blobs: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    server.blobs = blobs  # type: ignore[attr-defined]
    yield from serve(server)


def test_a_plain_http_registry_is_reached_without_a_tls_context(
    registry: str, blobs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = tls.ssl_context

    def counted(verify: str) -> ssl.SSLContext:
        made.append(verify)
        return real(verify)

    monkeypatch.setattr(tls, "ssl_context", counted)
    with RegistryClient(lambda _: None) as client:
        for n in range(3):
            assert client.resolve_digest(parse_reference(f"{registry}/shop/app{n}:1")) == DIGEST
        assert made == []
        # The same client's first HTTPS request (a redirect to a blob store) makes the context, and it
        # verifies: a self-signed certificate is refused, as the registry's own would be.
        repository = parse_reference(f"{registry}/shop/app0:1").repository
        with pytest.raises(TlsRefused, match=f"registry {registry}: TLS certificate verification failed"):
            client.session.request("HEAD", repository, f"blobs/{DIGEST}")
        assert made == [tls.SYSTEM]
        connections = client.session._connections
        transport = connections.client(tls.SYSTEM)._transport
        assert isinstance(transport, tls._SchemeTransport)
        # What the HTTPS transport verifies with is the Connections' system-CA context, made once.
        secure = transport._secure()._pool._ssl_context
        assert secure is connections.context(tls.SYSTEM)
        assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname
        assert made == [tls.SYSTEM]
        # The plain transport never carries TLS; asked for https, it fails closed (it trusts no CA).
        with pytest.raises(httpx.ConnectError) as refused:
            transport._plain.handle_request(httpx.Request("GET", f"https://{blobs}/v2/"))
        assert tls.certificate_failure(refused.value) is not None
