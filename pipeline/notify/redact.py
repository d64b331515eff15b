"""What must never leave in a notice: every secret the run could know, replaced by *** wherever it shows."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Variables named like this hold secrets (REGISTRY_PASSWORD, COSIGN_PASSWORD, SIGSTORE_ID_TOKEN, ...).
_SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|API_?KEY", re.IGNORECASE)
_MIN_SECRET_LENGTH = 4  # shorter values ("1", "true") would mangle every line and are not worth hiding
_MAX_SECRET_FILE = 64 * 1024
# user:password@ in any URL (a git remote with a token, a webhook URL with basic auth).
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
# A JWT (an OIDC identity token given as --identity-token is in no variable).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


class Redactor:
    """Replaces known secret values (and their base64 forms) with ***, longest first so that a secret's
    prefix cannot leave its tail; removes URL userinfo and JWTs whatever they are."""

    def __init__(self, values: Iterable[str]) -> None:
        kept: set[str] = set()
        for value in values:
            value = value.strip()
            if len(value) < _MIN_SECRET_LENGTH:
                continue
            raw = value.encode()
            encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
            kept |= {value} | encoded | {e.rstrip("=") for e in encoded}
        ordered = sorted(kept, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    @classmethod
    def for_run(
        cls,
        environment: Mapping[str, str],
        secret_variables: Iterable[str] = (),
        secret_files: Iterable[Path] = (),
        docker_config: Path | None = None,
    ) -> Redactor:
        """Values of variables named like secrets and of `secret_variables` (build secrets, notify's own),
        the contents of `secret_files`, and the passwords and tokens in the docker config."""
        named = set(secret_variables)
        values = [value for name, value in environment.items() if name in named or _SECRET_NAME.search(name)]
        for path in secret_files:
            try:
                with path.open("rb") as file:
                    values.append(file.read(_MAX_SECRET_FILE).decode("utf-8", "replace"))
            except OSError:
                continue  # the run itself says a secret file is unreadable
        if docker_config is not None:
            values += _docker_config_secrets(docker_config / "config.json")
        return cls(values)

    def text(self, text: str) -> str:
        text = _USERINFO.sub(r"\g<scheme>***@", text)
        text = _JWT.sub("***", text)
        return self._pattern.sub("***", text) if self._pattern else text

    def data(self, value: Any) -> Any:
        """Every string in a JSON-like value redacted (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _docker_config_secrets(path: Path) -> list[str]:
    """The passwords and tokens of a docker config's `auths` (what `docker login` stored)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    auths = data.get("auths") if isinstance(data, dict) else None
    found: list[str] = []
    for entry in auths.values() if isinstance(auths, dict) else []:
        if not isinstance(entry, dict):
            continue
        for key in ("password", "identitytoken", "registrytoken"):
            if isinstance(entry.get(key), str):
                found.append(entry[key])
        if isinstance(entry.get("auth"), str):
            try:
                found.append(base64.b64decode(entry["auth"]).decode("utf-8", "replace").partition(":")[2])
            except ValueError:
                continue
    return found
