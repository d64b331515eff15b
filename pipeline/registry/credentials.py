"""Registry credentials from a docker config: `auths`, `credHelpers` and `credsStore`."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import AuthError, ConfigError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def engine_auth_config(self) -> dict[str, str]:
        """The auth_config the Docker Engine API expects for a push."""
        return {"username": self.username, "password": self.password}


# Credentials for a registry host (None: anonymous); defined once here, where Credentials is.
CredentialLookup = Callable[[str], Credentials | None]


def _normalize(key: str) -> str:
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


class DockerConfigCredentials:
    """Looks credentials up the way the docker CLI does; `config_dir` is DOCKER_CONFIG or ~/.docker."""

    def __init__(self, config_dir: Path) -> None:
        self.config_file = config_dir / "config.json"
        self._data: dict[str, object] | None = None
        self._cache: dict[str, Credentials | None] = {}

    def _config(self) -> dict[str, object]:
        if self._data is None:
            try:
                loaded = json.loads(self.config_file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                loaded = {}
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.config_file}: not a readable docker config: {exc}") from None
            self._data = loaded if isinstance(loaded, dict) else {}
        return self._data

    def __call__(self, registry: str) -> Credentials | None:
        if registry not in self._cache:
            self._cache[registry] = self._lookup(registry)
        return self._cache[registry]

    def _lookup(self, registry: str) -> Credentials | None:
        config = self._config()
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            for key, helper in helpers.items():
                if _normalize(key) == registry and isinstance(helper, str):
                    return self._from_helper(helper, key)
        auths = config.get("auths")
        if isinstance(auths, dict):
            for key, entry in auths.items():
                if _normalize(key) == registry and isinstance(entry, dict):
                    found = self._from_entry(key, entry)
                    if found:
                        return found
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            keys = DOCKER_HUB_KEYS[:1] if registry == "docker.io" else (registry,)
            return self._from_helper(store, keys[0])
        return None

    def _from_entry(self, key: str, entry: dict[str, object]) -> Credentials | None:
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                user, _, password = base64.b64decode(auth).decode().partition(":")
            except ValueError:
                raise ConfigError(f"{self.config_file}: auths.{key}.auth is not base64 'user:password'") from None
            return Credentials(user, password)
        username, secret = entry.get("username"), entry.get("password")
        if isinstance(username, str) and isinstance(secret, str):
            return Credentials(username, secret)
        return None

    def _from_helper(self, helper: str, server: str) -> Credentials | None:
        program = f"docker-credential-{helper}"
        try:
            done = subprocess.run(
                [program, "get"], input=server, capture_output=True, text=True, timeout=30, check=False
            )
        except FileNotFoundError:
            raise AuthError(f"{self.config_file}: credential helper '{program}' is not installed") from None
        except subprocess.TimeoutExpired:
            raise AuthError(f"credential helper '{program}' did not answer within 30s") from None
        if done.returncode != 0:
            return None  # helpers exit non-zero for "credentials not found"
        try:
            data = json.loads(done.stdout)
            return Credentials(str(data["Username"]), str(data["Secret"]))
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"credential helper '{program}' returned an unreadable answer") from None
