"""Registry credentials for Azure Container Registry from an Azure AD token: exchanged at the registry's
`/oauth2/exchange` for an ACR refresh token, used as the password of the null-GUID user in the usual
bearer-token flow (what `az acr login` hands to docker)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from pipeline.common.http import httpx
from pipeline.common.retry import POLICY, Transient, parse_retry_after
from pipeline.errors import AuthError, PipelineError
from pipeline.registry.credentials import CredentialLookup, Credentials
from pipeline.registry.reference import is_loopback_host

ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
ACR_DOMAINS = (".azurecr.io", ".azurecr.cn", ".azurecr.us")

TokenSource = Callable[[], str]  # an AAD access token (ARM audience), fetched when first needed


class _Transient(Transient):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


def is_acr_host(registry: str, login_servers: Iterable[str] = ()) -> bool:
    host = registry.lower()
    return host.endswith(ACR_DOMAINS) or host in {s.lower() for s in login_servers}


class AcrExchangeCredentials:
    """A credential lookup: `fallback` (the docker config) first, then the AAD token exchange for ACR
    login servers (`*.azurecr.io` and the configured ones)."""

    def __init__(
        self,
        fallback: CredentialLookup,
        aad_token: TokenSource,
        login_servers: Iterable[str] = (),
        insecure_registries: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._fallback = fallback
        self._aad_token = aad_token
        self._login_servers = tuple(login_servers)
        self._insecure = set(insecure_registries)
        self._transport = transport
        self._cache: dict[str, Credentials | None] = {}
        self._lock = threading.Lock()

    def __call__(self, registry: str) -> Credentials | None:
        found = self._fallback(registry)
        if found is not None or not is_acr_host(registry, self._login_servers):
            return found
        with self._lock:
            if registry not in self._cache:
                try:
                    self._cache[registry] = Credentials(ACR_USERNAME, self.exchange(registry))
                except PipelineError:
                    if registry.lower() in {s.lower() for s in self._login_servers}:
                        raise  # pipelines.yaml builds here: say why there are no credentials
                    self._cache[registry] = None  # e.g. anonymous pull from someone else's registry
            return self._cache[registry]

    def exchange(self, registry: str) -> str:
        """An ACR refresh token for `registry` in exchange for the AAD access token."""
        scheme = "http" if is_loopback_host(registry) or registry in self._insecure else "https"
        url = f"{scheme}://{registry}/oauth2/exchange"
        form = {"grant_type": "access_token", "service": registry, "access_token": self._aad_token()}
        try:
            with httpx.Client(transport=self._transport, timeout=60) as http:
                response = _post(http, url, form)
        except (_Transient, httpx.TransportError) as exc:
            raise AuthError(f"registry {registry}: the ACR token exchange at {url} kept failing: {exc}") from None
        if response.status_code in (401, 403):
            raise AuthError(
                f"registry {registry} refused the Azure AD token at /oauth2/exchange (HTTP {response.status_code}): "
                "the identity needs a role on the registry such as AcrPush"
            )
        if response.status_code >= 400:
            raise AuthError(f"registry {registry}: /oauth2/exchange failed with HTTP {response.status_code}")
        try:
            token = response.json()["refresh_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"registry {registry}: /oauth2/exchange returned no refresh_token") from None
        return str(token)


@POLICY.retrying(lambda exc: isinstance(exc, (_Transient, httpx.TransportError))).wraps
def _post(http: httpx.Client, url: str, form: dict[str, str]) -> httpx.Response:
    response = http.post(url, data=form)
    if response.status_code >= 500 or response.status_code == 429:
        raise _Transient(response)
    return response
