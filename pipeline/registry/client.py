"""One client for OCI distribution registries over httpx: manifests, tags, auth, retries."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pipeline.errors import AuthError, RegistryError
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import ImageRef, Repository, is_loopback_host

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)

MAX_ATTEMPTS = 5
MAX_RETRY_AFTER = 30.0

CredentialLookup = Callable[[str], Credentials | None]


class TransientRegistryError(Exception):
    """A response worth retrying (5xx, 429); carries the server's Retry-After if any."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return min(float(value), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        return max(0.0, min(parsedate_to_datetime(value).timestamp() - time.time(), MAX_RETRY_AFTER))
    except (TypeError, ValueError):
        return None


_backoff = wait_exponential_jitter(multiplier=0.25, max=8.0, jitter=0.25)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientRegistryError):
        hinted = _retry_after(exc.response)
        if hinted is not None:
            return hinted
    return float(_backoff(state))


# The retry policy for every registry request, declared once.
_retrying = retry(
    retry=retry_if_exception_type((httpx.TransportError, TransientRegistryError)),
    wait=_wait,
    stop=stop_after_attempt(MAX_ATTEMPTS),
    reraise=True,
)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    body: bytes


def _registry_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """Talks to registries on behalf of one run. Thread-safe; tokens are cached per registry and scope."""

    def __init__(
        self,
        credentials: CredentialLookup,
        insecure_registries: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._credentials = credentials
        self._insecure = set(insecure_registries)
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=True)
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- public operations ---------------------------------------------------

    def get_manifest(self, ref: ImageRef) -> Manifest:
        reference = ref.digest or ref.tag or "latest"
        response = self._request("GET", ref.repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if response.status_code == 404:
            raise RegistryError(f"{ref}: not found in the registry")
        self._raise_for(response, ref.repository, f"reading manifest {reference}")
        body = response.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.digest and ref.digest != digest:
            raise RegistryError(f"{ref}: registry returned content with digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(media_type=media_type, digest=digest, body=body)

    def resolve_digest(self, ref: ImageRef) -> str | None:
        """The digest a tag points at now (HEAD, falling back to GET), or None if the tag does not exist."""
        reference = ref.digest or ref.tag or "latest"
        response = self._request("HEAD", ref.repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if response.status_code == 404:
            return None
        self._raise_for(response, ref.repository, f"resolving {reference}")
        digest = response.headers.get("Docker-Content-Digest")
        return digest or self.get_manifest(ref).digest

    def put_manifest(self, repository: Repository, reference: str, manifest: Manifest) -> str:
        response = self._request(
            "PUT",
            repository,
            f"manifests/{reference}",
            content=manifest.body,
            headers={"Content-Type": manifest.media_type},
            push=True,
        )
        self._raise_for(response, repository, f"writing manifest {reference}")
        return str(response.headers.get("Docker-Content-Digest", manifest.digest))

    def tag(self, repository: Repository, digest: str, tag: str) -> None:
        """Point `tag` at `digest` in the registry by re-putting the manifest's exact bytes."""
        manifest = self.get_manifest(repository.with_digest(digest))
        stored = self.put_manifest(repository, tag, manifest)
        if stored != digest:
            raise RegistryError(f"{repository}:{tag}: registry stored digest {stored}, expected {digest}")

    def list_tags(self, repository: Repository) -> list[str]:
        tags: list[str] = []
        path = "tags/list?n=1000"
        while path:
            response = self._request("GET", repository, path)
            if response.status_code == 404:
                return tags
            self._raise_for(response, repository, "listing tags")
            tags.extend(response.json().get("tags") or [])
            link = response.headers.get("Link", "")
            match = re.search(r"<[^>]*/v2/[^>]*?/(tags/list[^>]*)>", link)
            path = match.group(1) if match else ""
        return tags

    # --- transport, auth and retries ------------------------------------------

    def base_url(self, registry: str) -> str:
        scheme = "http" if is_loopback_host(registry) or registry in self._insecure else "https"
        host = "registry-1.docker.io" if registry == "docker.io" else registry
        return f"{scheme}://{host}/v2"

    def _request(
        self,
        method: str,
        repository: Repository,
        path: str,
        *,
        accept: Iterable[str] = (),
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        push: bool = False,
    ) -> httpx.Response:
        url = f"{self.base_url(repository.registry)}/{repository.path}/{path}"
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
                    f"({_registry_message(response)})"
                )
        return response

    def _send_reporting(
        self, method: str, url: str, registry: str, scope: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        try:
            return self._send(method, url, registry, scope, headers, content)
        except TransientRegistryError as exc:
            raise RegistryError(
                f"registry {registry} kept failing ({_registry_message(exc.response)}) "
                f"after {MAX_ATTEMPTS} attempts: {method} {url}"
            ) from None
        except httpx.TransportError as exc:
            raise RegistryError(
                f"cannot reach registry {registry} after {MAX_ATTEMPTS} attempts: {type(exc).__name__}: {exc}"
            ) from None

    @_retrying
    def _send(
        self, method: str, url: str, registry: str, scope: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        request_headers = dict(headers)
        auth = self._auth_header(registry, scope)
        if auth:
            request_headers["Authorization"] = auth
        response = self._http.request(method, url, headers=request_headers, content=content)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientRegistryError(response)
        return response

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
            response = self._fetch_token(realm, query, auth)
        except (TransientRegistryError, httpx.TransportError) as exc:
            raise AuthError(f"registry {registry} token service failed after {MAX_ATTEMPTS} attempts: {exc}") from None
        if response.status_code in (401, 403):
            what = "rejected the credentials" if creds else "requires credentials and none were found"
            raise AuthError(f"registry {registry} token service {what} for {scope}")
        if response.status_code >= 400:
            raise AuthError(f"registry {registry} token service failed: {_registry_message(response)}")
        data: dict[str, Any] = response.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            raise AuthError(f"registry {registry} token service returned no token")
        with self._lock:
            self._tokens[(registry, scope)] = str(token)

    @_retrying
    def _fetch_token(self, realm: str, query: dict[str, str], auth: httpx.BasicAuth | None) -> httpx.Response:
        response = self._http.get(realm, params=query, auth=auth) if auth else self._http.get(realm, params=query)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientRegistryError(response)
        return response

    @staticmethod
    def _raise_for(response: httpx.Response, repository: Repository, action: str) -> None:
        if response.status_code == 403:
            raise AuthError(f"{repository}: access denied while {action} ({_registry_message(response)})")
        if response.status_code >= 400:
            raise RegistryError(f"{repository}: {action} failed: {_registry_message(response)}")
