"""How a registry is reached: HTTPS verified against the system CAs by default, or also against the
registry's own `ca_file`; plain HTTP or unverified TLS only for `insecure_registries`; a loopback registry
is probed once and reached over plain HTTP only if it does not speak TLS at all."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Literal

from pipeline.common.http import httpx
from pipeline.errors import RegistryError
from pipeline.files import read_regular_file
from pipeline.registry.reference import is_loopback_host

Scheme = Literal["http", "https"]
# What a client verifies certificates against: the system CAs, those plus a CA file, or nothing.
Verify = str  # SYSTEM, UNVERIFIED, or the absolute path of a CA file
SYSTEM: Verify = "system"
UNVERIFIED: Verify = "unverified"

# OpenSSL's reasons for a handshake that met something other than TLS (an HTTP server's reply).
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


class TlsRefused(RegistryError):
    """A registry's certificate did not verify, so nothing is sent to it."""


class Probe(Enum):
    TLS = "tls"  # the handshake completed (and verified, where the context verifies)
    PLAIN = "plain"  # it answers plain HTTP (or met the handshake with something that is not TLS)
    CERT_INVALID = "cert-invalid"  # it speaks TLS, but its certificate did not verify
    UNREACHABLE = "unreachable"  # no answer (refused, timeout, reset): nothing learned


@dataclass(frozen=True)
class ProbeResult:
    outcome: Probe
    detail: str = ""


@dataclass(frozen=True)
class Approach:
    """How to reach one registry before anything is known about its server."""

    verify: Verify
    probe: bool  # ask the server once whether it speaks TLS (loopback and insecure registries)

    @property
    def guess(self) -> Scheme:
        """The scheme to assume while the probe has not answered (or could not)."""
        return "http" if self.probe else "https"


@dataclass(frozen=True)
class Route:
    scheme: Scheme
    verify: Verify


@dataclass(frozen=True)
class TlsPolicy:
    """Per-registry TLS settings from pipelines.yaml and the command line (pure data)."""

    ca_files: Mapping[str, str] = field(default_factory=dict)  # registry host -> absolute CA file path
    insecure: frozenset[str] = frozenset()

    @classmethod
    def of(cls, insecure: Iterable[str] = (), ca_files: Mapping[str, str | Path] | None = None) -> TlsPolicy:
        return cls({host: str(path) for host, path in (ca_files or {}).items()}, frozenset(insecure))

    def approach(self, registry: str) -> Approach:
        if registry in self.ca_files:
            return Approach(self.ca_files[registry], probe=False)
        if registry in self.insecure:
            return Approach(UNVERIFIED, probe=True)
        return Approach(SYSTEM, probe=is_loopback_host(registry))

    def route(self, registry: str, probed: ProbeResult) -> Route | None:
        """Where requests to `registry` go after the probe; None when the probe settled nothing (then
        requests use the guess and the next one probes again). Raises TlsRefused for a bad certificate."""
        approach = self.approach(registry)
        if probed.outcome is Probe.TLS:
            return Route("https", approach.verify)
        if probed.outcome is Probe.PLAIN:  # verify still applies to an https redirect target
            return Route("http", approach.verify)
        if probed.outcome is Probe.CERT_INVALID:
            raise TlsRefused(refusal(registry, probed.detail, approach.verify))
        return None


def refusal(registry: str, reason: str, verify: Verify) -> str:
    """The one-line error for a certificate that did not verify, with the fix."""
    if verify not in (SYSTEM, UNVERIFIED):
        return (
            f"registry {registry}: TLS certificate verification failed ({reason}) against the system CAs and "
            f"ca_file {verify}; check that ca_file is the CA that signed the registry's certificate"
        )
    return (
        f"registry {registry}: TLS certificate verification failed ({reason}); refusing to connect. "
        f"Trust its CA with `registries: {{{registry}: {{ca_file: ca.pem}}}}` in pipelines.yaml, "
        f"or list it under `insecure_registries` to skip verification"
    )


def ssl_context(verify: Verify) -> ssl.SSLContext:
    """The context for one verify setting: httpx's default CAs (plus the CA file), or no verification."""
    context = httpx.create_ssl_context()
    if verify == UNVERIFIED:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify != SYSTEM:
        try:
            # Read here, bounded (OpenSSL would wait on a FIFO or read a device without end).
            context.load_verify_locations(cadata=read_regular_file(Path(verify), "CA file").decode("ascii", "replace"))
        except (OSError, ValueError, ssl.SSLError) as exc:  # ValueError: an empty file
            raise RegistryError(f"ca_file {verify}: cannot load it as PEM CA certificates ({exc})") from None
    return context


def host_and_port(registry: str, default_port: int) -> tuple[str, int]:
    """The TCP address of a registry host[:port]."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, colon, port = registry.rpartition(":")
    if colon and port.isdigit():
        return host, int(port)
    return registry, default_port


def probe_tls(registry: str, context: Callable[[], ssl.SSLContext], timeout: float) -> ProbeResult:
    """Does `registry` speak TLS? A plain `GET /v2/` answered by HTTP (other than the 400 a TLS server
    gives plain requests) means plain HTTP; otherwise one TLS handshake with `context()` (made only
    then) decides. Asking in plain first never stalls on a server that waits for a request line that a
    ClientHello lacks."""
    host, port = host_and_port(registry, 443)
    plain_port = host_and_port(registry, 80)[1]
    try:
        try:
            if _answers_plain_http(host, plain_port, registry, timeout):
                return ProbeResult(Probe.PLAIN, "answers plain HTTP")
        except OSError:
            if plain_port == port:
                raise  # nothing listens there
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context().wrap_socket(raw, server_hostname=host):
                return ProbeResult(Probe.TLS)
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult(Probe.CERT_INVALID, str(getattr(exc, "verify_message", "") or exc))
    except ssl.SSLError as exc:
        if exc.reason in _NOT_TLS_REASONS:
            return ProbeResult(Probe.PLAIN, str(exc.reason))
        return ProbeResult(Probe.UNREACHABLE, str(exc))
    except OSError as exc:
        return ProbeResult(Probe.UNREACHABLE, str(exc))


def _answers_plain_http(host: str, port: int, registry: str, timeout: float) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        raw.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {registry}\r\nConnection: close\r\n\r\n".encode("ascii"))
        head = b""
        try:
            while len(head) < 12 and (chunk := raw.recv(64)):
                head += chunk
        except OSError:
            return False  # reset or silence: a TLS server dropping a plain request
    status = _STATUS_LINE.match(head)
    return status is not None and status.group(1) != b"400"


def certificate_failure(exc: BaseException) -> str | None:
    """The verification failure behind an httpx error (walking causes and wrapped arguments), if any."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(getattr(current, "verify_message", "") or current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [a for a in current.args if isinstance(a, BaseException)]
    return None


class _SchemeTransport(httpx.BaseTransport):
    """httpx's transport, one for plain HTTP and one for HTTPS, the latter (and its TLS context) made on
    its first request. The plain one's context trusts no CA: it never carries TLS, and would fail closed."""

    def __init__(self, context: Callable[[], ssl.SSLContext]) -> None:
        self._context = context
        self._plain = httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def _secure(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._tls is None:
                self._tls = httpx.HTTPTransport(verify=self._context())
            return self._tls

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self._plain.handle_request(request)
        return self._secure().handle_request(request)

    def close(self) -> None:
        self._plain.close()
        with self._lock:
            if self._tls is not None:
                self._tls.close()


# (registry, its TLS context made on demand, timeout) -> what the registry speaks
Prober = Callable[[str, Callable[[], ssl.SSLContext], float], ProbeResult]
MAX_PROBE_SECONDS = 10.0


class Connections:
    """The route to each registry (probed once where the policy says so) and one httpx client per
    verify setting. Thread-safe."""

    def __init__(
        self, policy: TlsPolicy, transport: httpx.BaseTransport | None, timeout: float, prober: Prober
    ) -> None:
        self._policy = policy
        self._transport = transport
        self._timeout = timeout
        self._prober = prober
        self._contexts = {path: ssl_context(path) for path in set(policy.ca_files.values())}  # a bad file fails now
        self._clients: dict[Verify, httpx.Client] = {}
        self._routes: dict[str, Route] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def scheme(self, registry: str) -> Scheme:
        """As probed, or (before the first request) as the policy expects."""
        with self._lock:
            known = self._routes.get(registry)
        return known.scheme if known else self._policy.approach(registry).guess

    def _settled(self, registry: str) -> Route | None:
        """The route an earlier probe settled on (None: none yet); a refused registry raises again."""
        with self._lock:
            if registry in self._refused:
                raise TlsRefused(self._refused[registry])
            return self._routes.get(registry)

    def connect(self, registry: str) -> Route:
        known = self._settled(registry)
        if known:
            return known
        approach = self._policy.approach(registry)
        if not approach.probe:
            route = Route("https", approach.verify)
        else:
            with self._probe_lock:
                # Threads starting together (an index's children read side by side) wait for one probe.
                known = self._settled(registry)
                if known:
                    return known
                probed = self._prober(
                    registry, partial(self.context, approach.verify), min(self._timeout, MAX_PROBE_SECONDS)
                )
            try:
                settled = self._policy.route(registry, probed)
            except TlsRefused as exc:
                with self._lock:
                    self._refused[registry] = str(exc)
                raise
            if settled is None:  # no answer: assume the usual and learn nothing; the request will say why
                return Route(approach.guess, approach.verify)
            route = settled
        with self._lock:
            self._routes[registry] = route
        return route

    def context(self, verify: Verify) -> ssl.SSLContext:
        with self._lock:
            if verify not in self._contexts:
                self._contexts[verify] = ssl_context(verify)
            return self._contexts[verify]

    def client(self, verify: Verify) -> httpx.Client:
        """The client for one verify setting. Its TLS context (reading the CA bundle: ~40 ms) is made for
        the first HTTPS request: a run that speaks only plain HTTP (a loopback registry) never makes one.
        With proxies in the environment, httpx makes their transports at once, with the context."""
        with self._lock:
            made = self._clients.get(verify)
        if made is not None:
            return made
        lazy = self._transport is None and not urllib.request.getproxies()
        context = None if lazy else self.context(verify)
        with self._lock:
            if verify not in self._clients:
                transport = _SchemeTransport(partial(self.context, verify)) if lazy else self._transport
                self._clients[verify] = httpx.Client(
                    transport=transport, timeout=self._timeout, follow_redirects=True, verify=context or True
                )
            return self._clients[verify]

    def client_for(self, registry: str) -> httpx.Client:
        return self.client(self.connect(registry).verify)

    def realm_client(self, registry: str, realm: str) -> httpx.Client:
        """A token service on the registry's own host is trusted like the registry; elsewhere, the system CAs."""
        try:
            same_host = httpx.URL(realm).host == httpx.URL(f"https://{registry}").host
        except httpx.InvalidURL:
            same_host = False
        return self.client_for(registry) if same_host else self.client(SYSTEM)
