"""The transport to registries: URLs and TLS (per registry, see tls.py), authentication (bearer tokens,
basic), retries declared once."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Self, TypedDict, Unpack

from pipeline.common.http import httpx
from pipeline.common.retry import POLICY, Transient, parse_retry_after
from pipeline.errors import AuthError, RegistryError
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.reference import Repository
from pipeline.registry.tls import (
    Connections,
    Prober,
    Route,
    TlsPolicy,
    TlsRefused,
    certificate_failure,
    probe_tls,
    refusal,
)

# A request body: bytes, or a callable giving a fresh chunk iterator per attempt (so a retry restarts it).
Body = bytes | Callable[[], Iterator[bytes]] | None


class TransientRegistryError(Transient):
    """A response worth retrying (5xx, 429); carries the server's Retry-After if any."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


def _worth_retrying(exc: BaseException) -> bool:
    """Transient answers and transport errors, except a certificate that did not verify (it won't)."""
    if isinstance(exc, TransientRegistryError):
        return True
    return isinstance(exc, httpx.TransportError) and certificate_failure(exc) is None


# Every registry request retries by the one policy (pipeline/common/retry.py).
_retrying = POLICY.retrying(_worth_retrying).wraps


def registry_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Closing:
    """Closed when a `with` block ends (`with RegistryClient(...) as client:`); `close` says how."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


DEFAULT_TIMEOUT = 60.0  # seconds, per request


class ConnectionOptions(TypedDict, total=False):
    """How registries are reached, for RegistrySession and (passed on) RegistryClient; each may be left out.
    `insecure_registries`: hosts reached over plain HTTP or unverified TLS (none); `transport`: httpx's
    (its default); `timeout`: seconds per request (DEFAULT_TIMEOUT); `ca_files`: registry host -> a CA file
    its TLS certificate is verified against, besides the system CAs (none)."""

    insecure_registries: Iterable[str]
    transport: httpx.BaseTransport | None
    timeout: float
    ca_files: Mapping[str, str | Path] | None


class RegistrySession(Closing):
    """Sends requests to registries with auth and retries. Thread-safe; tokens cached per registry and scope.

    `ca_files` maps a registry host to a CA file its certificate is verified against (besides the system
    CAs); one httpx client per distinct verify setting."""

    def __init__(
        self, credentials: CredentialLookup, prober: Prober = probe_tls, **connection: Unpack[ConnectionOptions]
    ) -> None:
        self._credentials = credentials
        policy = TlsPolicy.of(connection.get("insecure_registries", ()), connection.get("ca_files"))
        timeout = connection.get("timeout", DEFAULT_TIMEOUT)
        self._connections = Connections(policy, connection.get("transport"), timeout, prober)
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._connections.close()

    def base_url(self, registry: str) -> str:
        """The registry's API root: as probed, or (before any request) as the policy expects it."""
        scheme = self._connections.scheme(registry)
        host = "registry-1.docker.io" if registry == "docker.io" else registry
        return f"{scheme}://{host}/v2"

    def connect(self, registry: str) -> Route:
        """Settle how `registry` is reached; raise TlsRefused if its certificate does not verify."""
        return self._connections.connect(registry)

    def request(
        self,
        method: str,
        repository: Repository,
        path: str,
        *,
        accept: Iterable[str] = (),
        content: Body = None,
        headers: dict[str, str] | None = None,
        push: bool = False,
        url: str | None = None,
    ) -> httpx.Response:
        """`path` is below /v2/<repository>/; `url` (an upload location) replaces it when given."""
        self.connect(repository.registry)
        url = url or f"{self.base_url(repository.registry)}/{repository.path}/{path}"
        scope = f"repository:{repository.path}:{'pull,push' if push else 'pull'}"
        all_headers = dict(headers or {})
        if accept:
            all_headers["Accept"] = ", ".join(accept)
        response = self._send_reporting(method, url, repository.registry, scope, all_headers, content)
        if response.status_code == 401:
            self._authenticate(repository.registry, scope, response)
            response = self._send_reporting(method, url, repository.registry, scope, all_headers, content)
            if response.status_code == 401:
                raise AuthError(
                    f"{repository}: registry {repository.registry} rejected the credentials "
                    f"({registry_message(response)})"
                )
        return response

    def _send_reporting(
        self, method: str, url: str, registry: str, scope: str, headers: dict[str, str], content: Body
    ) -> httpx.Response:
        try:
            return self._send(method, url, registry, scope, headers, content)
        except TransientRegistryError as exc:
            raise RegistryError(
                f"registry {registry} kept failing ({registry_message(exc.response)}) "
                f"after {POLICY.attempts} attempts: {method} {url}"
            ) from None
        except httpx.TransportError as exc:
            raise self._transport_failure(registry, exc) from None

    def _transport_failure(self, registry: str, exc: httpx.TransportError) -> RegistryError:
        reason = certificate_failure(exc)
        if reason is not None:
            return TlsRefused(refusal(registry, reason, self.connect(registry).verify))
        return RegistryError(
            f"cannot reach registry {registry} after {POLICY.attempts} attempts: {type(exc).__name__}: {exc}"
        )

    @_retrying
    def _send(
        self, method: str, url: str, registry: str, scope: str, headers: dict[str, str], content: Body
    ) -> httpx.Response:
        request_headers = dict(headers)
        auth = self._auth_header(registry, scope) if self._same_host(url, registry) else None
        if auth:
            request_headers["Authorization"] = auth
        # A callable body is a fresh chunk iterator per attempt, so a retried upload starts over.
        body = content() if callable(content) else content
        response = self._connections.client_for(registry).request(method, url, headers=request_headers, content=body)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientRegistryError(response)
        return response

    def _same_host(self, url: str, registry: str) -> bool:
        """Credentials go only to the registry itself, never to a host an upload Location names."""
        return url.startswith(self.base_url(registry).rsplit("/v2", 1)[0] + "/")

    def _auth_header(self, registry: str, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get((registry, scope))
            basic = registry in self._basic
        if token:
            return f"Bearer {token}"
        if basic:
            creds = self._credentials(registry)
            if creds:
                return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        return None

    def _authenticate(self, registry: str, scope: str, challenge: httpx.Response) -> None:
        header = challenge.headers.get("WWW-Authenticate", "")
        creds = self._credentials(registry)
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "basic":
            if creds is None:
                raise AuthError(
                    f"registry {registry} requires credentials and the docker config has none for it "
                    "(run 'docker login' or point DOCKER_CONFIG at a config with 'auths')"
                )
            with self._lock:
                self._basic.add(registry)
            return
        if scheme != "bearer":
            raise AuthError(f"registry {registry} asked for unsupported authentication '{scheme or header}'")
        params = dict(_CHALLENGE_PARAM.findall(header))
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"registry {registry} sent a bearer challenge without a realm")
        query = {"service": params.get("service", registry), "scope": params.get("scope", scope)}
        auth = httpx.BasicAuth(creds.username, creds.password) if creds else None
        try:
            http = self._connections.realm_client(registry, realm)
            response = self._fetch_token(http, realm, query, auth)
        except (TransientRegistryError, httpx.TransportError) as exc:
            raise AuthError(
                f"registry {registry} token service failed after {POLICY.attempts} attempts: {exc}"
            ) from None
        if response.status_code in (401, 403):
            what = "rejected the credentials" if creds else "requires credentials and none were found"
            raise AuthError(f"registry {registry} token service {what} for {scope}")
        if response.status_code >= 400:
            raise AuthError(f"registry {registry} token service failed: {registry_message(response)}")
        data: dict[str, Any] = response.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            raise AuthError(f"registry {registry} token service returned no token")
        with self._lock:
            self._tokens[(registry, scope)] = str(token)

    @_retrying
    def _fetch_token(
        self, http: httpx.Client, realm: str, query: dict[str, str], auth: httpx.BasicAuth | None
    ) -> httpx.Response:
        response = http.get(realm, params=query, auth=auth) if auth else http.get(realm, params=query)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientRegistryError(response)
        return response

    def download(self, repository: Repository, path: str, sink: IO[bytes]) -> str:
        """Stream GET /v2/<repository>/<path> into `sink`; return the sha256 digest of what arrived."""
        probe = self.request("HEAD", repository, path)  # settles authentication before streaming
        self.raise_for(probe, repository, f"reading {path}")
        url = f"{self.base_url(repository.registry)}/{repository.path}/{path}"
        scope = f"repository:{repository.path}:pull"
        try:
            return self._download(url, repository.registry, scope, sink)
        except httpx.TransportError as exc:
            if certificate_failure(exc) is not None:
                raise self._transport_failure(repository.registry, exc) from None
            raise RegistryError(
                f"{repository}: downloading {path} failed after {POLICY.attempts} attempts: {exc}"
            ) from None
        except TransientRegistryError as exc:
            raise RegistryError(
                f"{repository}: downloading {path} failed after {POLICY.attempts} attempts: {exc}"
            ) from None

    @_retrying
    def _download(self, url: str, registry: str, scope: str, sink: IO[bytes]) -> str:
        sink.seek(0)
        sink.truncate()
        hasher = hashlib.sha256()
        headers = {}
        auth = self._auth_header(registry, scope)
        if auth:
            headers["Authorization"] = auth
        with self._connections.client_for(registry).stream("GET", url, headers=headers) as response:
            if response.status_code >= 500 or response.status_code == 429:
                response.read()
                raise TransientRegistryError(response)
            if response.status_code >= 400:
                response.read()
                raise RegistryError(f"{url}: {registry_message(response)}")
            for chunk in response.iter_bytes(1 << 20):
                hasher.update(chunk)
                sink.write(chunk)
        sink.flush()
        return "sha256:" + hasher.hexdigest()

    @staticmethod
    def raise_for(response: httpx.Response, repository: Repository, action: str) -> None:
        if response.status_code == 403:
            raise AuthError(f"{repository}: access denied while {action} ({registry_message(response)})")
        if response.status_code >= 400:
            raise RegistryError(f"{repository}: {action} failed: {registry_message(response)}")
