"""How the registry client reaches a registry: scheme, certificate verification, the loopback probe."""

from __future__ import annotations

import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import certifi
import httpx
import pytest

from pipeline.errors import RegistryError
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_reference
from pipeline.registry.session import RegistrySession
from pipeline.registry.tls import (
    SYSTEM,
    UNVERIFIED,
    Approach,
    Probe,
    Prober,
    ProbeResult,
    Route,
    TlsPolicy,
    TlsRefused,
    certificate_failure,
    host_and_port,
    ssl_context,
)

CA = "/etc/pipeline/lan-ca.pem"
EMPTY_TAGS = {"name": "demo/app", "tags": []}


def test_the_policy_decides_the_approach_per_registry() -> None:
    policy = TlsPolicy.of(["build.lan:5000", "127.0.0.1:5002"], {"reg.lan": CA, "127.0.0.1:5443": CA})
    assert policy.approach("registry.example.com") == Approach(SYSTEM, probe=False)
    assert policy.approach("docker.io") == Approach(SYSTEM, probe=False)
    assert policy.approach("reg.lan") == Approach(CA, probe=False)
    assert policy.approach("build.lan:5000") == Approach(UNVERIFIED, probe=True)
    assert policy.approach("build.lan:5001") == Approach(SYSTEM, probe=False)  # the port is part of the name
    for loopback in ("127.0.0.1:5000", "127.8.9.10:80", "localhost", "localhost:5000", "[::1]:5000"):
        assert policy.approach(loopback) == Approach(SYSTEM, probe=True), loopback
    assert policy.approach("127.0.0.1:5443") == Approach(CA, probe=False)  # a CA means HTTPS, loopback or not
    assert policy.approach("127.0.0.1:5002") == Approach(UNVERIFIED, probe=True)
    assert Approach(SYSTEM, probe=True).guess == "http" and Approach(SYSTEM, probe=False).guess == "https"


def test_a_ca_file_wins_over_insecure_registries() -> None:
    policy = TlsPolicy.of(["reg.lan"], {"reg.lan": CA})
    assert policy.approach("reg.lan") == Approach(CA, probe=False)


@pytest.mark.parametrize(
    ("registry", "outcome", "expected"),
    [
        ("127.0.0.1:5000", Probe.TLS, Route("https", SYSTEM)),
        ("127.0.0.1:5000", Probe.PLAIN, Route("http", SYSTEM)),
        ("127.0.0.1:5000", Probe.UNREACHABLE, None),
        ("build.lan:5000", Probe.TLS, Route("https", UNVERIFIED)),
        ("build.lan:5000", Probe.PLAIN, Route("http", UNVERIFIED)),
        ("build.lan:5000", Probe.UNREACHABLE, None),
    ],
)
def test_the_probe_settles_the_route(registry: str, outcome: Probe, expected: Route | None) -> None:
    policy = TlsPolicy.of(["build.lan:5000"])
    assert policy.route(registry, ProbeResult(outcome)) == expected


def test_a_loopback_certificate_that_does_not_verify_is_refused_with_the_fix() -> None:
    policy = TlsPolicy.of()
    with pytest.raises(TlsRefused) as refused:
        policy.route("127.0.0.1:5443", ProbeResult(Probe.CERT_INVALID, "self-signed certificate"))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("registry 127.0.0.1:5443: TLS certificate verification failed (self-signed certificate)")
    assert "registries: {127.0.0.1:5443: {ca_file: ca.pem}}" in message and "insecure_registries" in message


def fake_prober(outcomes: list[Probe], calls: list[str], seconds: float = 0.0) -> Prober:
    def probe(registry: str, context: ssl.SSLContext, timeout: float) -> ProbeResult:
        calls.append(registry)
        time.sleep(seconds)
        return ProbeResult(outcomes.pop(0) if len(outcomes) > 1 else outcomes[0], "self-signed certificate")

    return probe


def client_with(
    outcomes: list[Probe],
    calls: list[str],
    seen: list[str],
    ca_files: dict[str, Path] | None = None,
    probe_seconds: float = 0.0,
) -> RegistryClient:
    """A client whose probe answers `outcomes` in turn (recording `calls`, taking `probe_seconds`),
    requests recorded in `seen`."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=EMPTY_TAGS)

    client = RegistryClient(lambda _: None)
    client.session = RegistrySession(
        lambda _: None,
        transport=httpx.MockTransport(handler),
        ca_files=ca_files,
        prober=fake_prober(outcomes, calls, probe_seconds),
    )
    return client


def test_a_plain_loopback_registry_is_probed_once_and_reached_over_http() -> None:
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([Probe.PLAIN], calls, seen)
    repo = parse_reference("127.0.0.1:5000/demo/app").repository
    client.list_tags(repo)
    client.list_tags(repo)
    assert calls == ["127.0.0.1:5000"]
    assert all(url.startswith("http://127.0.0.1:5000/v2/demo/app/tags/list") for url in seen) and len(seen) == 2


@pytest.mark.parametrize("outcome", [Probe.PLAIN, Probe.CERT_INVALID])
def test_threads_starting_together_wait_for_one_probe(outcome: Probe) -> None:
    """An index's children are read side by side by a new client: one probe, not one per thread."""
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([outcome], calls, seen, probe_seconds=0.05)
    repo = parse_reference("127.0.0.1:5000/demo/app").repository
    start = threading.Barrier(4)

    def read() -> str:
        start.wait()
        try:
            client.list_tags(repo)
            return "listed"
        except TlsRefused:
            return "refused"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: read(), range(4)))
    assert calls == ["127.0.0.1:5000"]
    assert outcomes == ["listed" if outcome is Probe.PLAIN else "refused"] * 4
    assert len(seen) == (4 if outcome is Probe.PLAIN else 0)


def test_a_loopback_registry_speaking_verified_tls_is_reached_over_https() -> None:
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([Probe.TLS], calls, seen)
    client.list_tags(parse_reference("localhost:5000/demo/app").repository)
    assert seen[0].startswith("https://localhost:5000/v2/")
    assert client.base_url("localhost:5000") == "https://localhost:5000/v2"


def test_a_refused_loopback_registry_gets_no_request_and_is_not_probed_again() -> None:
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([Probe.CERT_INVALID], calls, seen)
    repo = parse_reference("127.0.0.1:5443/demo/app").repository
    for _ in range(2):
        with pytest.raises(TlsRefused, match="verification failed \\(self-signed certificate\\); refusing"):
            client.list_tags(repo)
    assert calls == ["127.0.0.1:5443"] and seen == []


def test_an_unanswered_probe_falls_back_to_http_and_asks_again_next_time() -> None:
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([Probe.UNREACHABLE, Probe.PLAIN], calls, seen)
    repo = parse_reference("127.0.0.1:5000/demo/app").repository
    client.list_tags(repo)
    client.list_tags(repo)
    client.list_tags(repo)
    assert calls == ["127.0.0.1:5000", "127.0.0.1:5000"]
    assert all(url.startswith("http://") for url in seen)


def test_registries_with_a_ca_file_or_not_on_loopback_are_never_probed() -> None:
    calls: list[str] = []
    seen: list[str] = []
    client = client_with([Probe.PLAIN], calls, seen, ca_files={"127.0.0.1:5443": Path(certifi.where())})
    client.list_tags(parse_reference("127.0.0.1:5443/demo/app").repository)
    client.list_tags(parse_reference("registry.example.com/demo/app").repository)
    assert calls == []
    assert seen[0].startswith("https://127.0.0.1:5443/v2/") and seen[1].startswith("https://registry.example.com/")


def test_a_certificate_failure_is_not_retried_and_names_the_fix() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        failure = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        failure.verify_message = "self-signed certificate in certificate chain"
        raise httpx.ConnectError(str(failure)) from failure

    client = RegistryClient(lambda _: None, transport=httpx.MockTransport(handler))
    with pytest.raises(TlsRefused) as refused:
        client.resolve_digest(parse_reference("registry.example.com/demo/app:1"))
    assert calls == 1
    assert str(refused.value).startswith(
        "registry registry.example.com: TLS certificate verification failed "
        "(self-signed certificate in certificate chain); refusing to connect."
    )
    assert "registries: {registry.example.com: {ca_file: ca.pem}}" in str(refused.value)


def test_certificate_failure_finds_the_ssl_error_inside_wrapped_errors() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    wrapped = httpx.ConnectError("boom")
    wrapped.__cause__ = RuntimeError(inner)  # httpcore keeps it as an argument
    assert certificate_failure(wrapped) is not None
    assert certificate_failure(httpx.ConnectError("[Errno 111] Connection refused")) is None


def test_contexts_per_verify_setting() -> None:
    assert ssl_context(SYSTEM).verify_mode == ssl.CERT_REQUIRED
    unverified = ssl_context(UNVERIFIED)
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname


def test_a_file_that_is_no_ca_is_an_error_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(RegistryError, match="cannot load it as PEM CA certificates"):
        RegistryClient(lambda _: None, ca_files={"reg.lan": bad})


def test_host_and_port() -> None:
    assert host_and_port("127.0.0.1:5443", 443) == ("127.0.0.1", 5443)
    assert host_and_port("localhost", 443) == ("localhost", 443)
    assert host_and_port("localhost", 80) == ("localhost", 80)
    assert host_and_port("[::1]:5000", 443) == ("::1", 5000)
    assert host_and_port("[::1]", 443) == ("::1", 443)
