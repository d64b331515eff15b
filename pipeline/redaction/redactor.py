"""The Redactor: every secret a run could know, replaced by *** wherever it shows (reports, JUnit, the job
summary, CI outputs, progress and log lines, notifications, serve's run logs)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.common.urls import strip_credentials
from pipeline.errors import ConfigError
from pipeline.files import read_regular_file
from pipeline.redaction.wrapped import OFFSETS, Encoding, Fragments, Pending, Span, encoded_at, encodings, whole_groups

# Variables named like this hold secrets (REGISTRY_PASSWORD, COSIGN_PASSWORD, SIGSTORE_ID_TOKEN, ...).
_SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|API_?KEY", re.IGNORECASE)
MASK = "***"
# Shorter values ("1", "true") would mangle every line and are not worth hiding.
MIN_SECRET_LENGTH = 4
# A secret of several lines (a key file, a credentials file) shows one line at a time in a log, so each
# line is hidden on its own too; but only from this length: shorter lines are structure (`{`, `}`, `[default]`
# is 9) or a fragment not worth hiding (a PEM's short last line), and hiding them would mangle every log.
MIN_SECRET_LINE_LENGTH = 8
# A JWT (an OIDC identity token given as --identity-token is in no variable).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


class Redactor:
    """Replaces known secret values (each line of a multi-line one, and their base64 forms, also wrapped
    over lines) with ***, longest first so that a secret's prefix cannot leave its tail; then removes the
    credentials of any URL (common.urls.strip_credentials: userinfo, `access_token=`-like parameters) and
    JWTs, whatever they are."""

    def __init__(self, values: Iterable[str]) -> None:
        kept: set[str] = set()
        encoded: set[Encoding] = set()
        for value in values:
            for part in _parts(value):
                kept |= {part} | _base64_forms(part.encode())
                encoded |= encodings(part.encode())
        ordered = sorted(kept, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None
        self._fragments = Fragments(encoded)

    @classmethod
    def for_run(
        cls,
        environment: Mapping[str, str],
        secret_variables: Iterable[str] = (),
        secret_files: Iterable[Path] = (),
        docker_config: Path | None = None,
        values: Iterable[str] = (),
    ) -> Redactor:
        """Values of variables named like secrets and of `secret_variables` (build secrets, notify's own),
        the contents of `secret_files`, the credentials in the docker config, and `values` as they are."""
        named = set(secret_variables)
        found = [*values, *(value for name, value in environment.items() if name in named or _SECRET_NAME.search(name))]
        for path in secret_files:
            try:
                found.append(read_regular_file(path, "secret file").decode("utf-8", "replace"))
            except (OSError, ConfigError):
                continue  # the run itself refuses a secret file that is unreadable, not a file or too big
        if docker_config is not None:
            found += _docker_config_secrets(docker_config / "config.json")
        return cls(found)

    def text(self, text: str) -> str:
        """`text` redacted; its lines are one output (a base64 encoding wrapped over them is hidden)."""
        return self.stream().text(text)

    def stream(self) -> RedactedStream:
        """For the successive lines of one output given one at a time (a build step's log as it comes)."""
        return RedactedStream(self)

    def data(self, value: Any) -> Any:
        """Every string in a JSON-like value redacted (keys included); the strings of a list are taken as
        successive lines of one output (a log tail)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            stream = self.stream()
            return [stream.text(v) if isinstance(v, str) else self.data(v) for v in value]
        return value

    def _redact(self, text: str, pending: list[Pending]) -> tuple[str, list[Pending]]:
        spans: list[Span] = []
        if self._fragments:
            start = 0
            lines = text.split("\n")
            for line in lines[:-1] if len(lines) > 1 and not lines[-1] else lines:  # a last newline ends a line
                found, pending = self._fragments.spans(line, pending)
                spans += [(start + a, start + b) for a, b in found]
                start += len(line) + 1
        # Known values before URLs: a URL's password is then hidden even where it is not recognised as one.
        if self._pattern is not None:
            spans += [m.span() for m in self._pattern.finditer(text)]
        return _JWT.sub(MASK, strip_credentials(_masked(text, spans))), pending


class RedactedStream:
    """One output's lines, redacted in order: a line that goes on with a base64 encoding a line before
    left unfinished is hidden however short it is (the last line of a wrapped encoding)."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._pending: list[Pending] = []

    def text(self, text: str) -> str:
        redacted, self._pending = self._redactor._redact(text, self._pending)
        return redacted


def _masked(text: str, spans: list[Span]) -> str:
    """`text` with each of `spans` (overlapping or not) replaced by one MASK."""
    if not spans:
        return text
    shown: list[str] = []
    end = 0
    for start, stop in sorted(spans):
        if shown and start <= end:  # overlapping or adjacent: one mask
            end = max(end, stop)
            continue
        shown += [text[end:start], MASK]
        end = stop
    return "".join([*shown, text[end:]])


def _parts(value: str) -> list[str]:
    """What of one secret value is hidden: all of it, and each long enough line of a multi-line one."""
    whole = value.strip()
    parts = [whole] if len(whole) >= MIN_SECRET_LENGTH else []
    lines = [line.strip() for line in whole.splitlines()]
    if len(lines) > 1:
        parts += [line for line in lines if len(line) >= MIN_SECRET_LINE_LENGTH]
    return parts


def _base64_forms(raw: bytes) -> set[str]:
    """What of `raw`'s base64 shows wherever it sits in an encoded text. Base64 encodes 3 bytes as 4
    characters, so a secret after a prefix (`Basic ` + b64("gitlab-ci-token:" + token)) starts 0, 1 or 2
    bytes into a group: its encoding at each offset, less the characters that also encode the bytes before
    it (2 or 3 of them) and those of a last, partial group (they also encode what follows). As GitHub's
    runner masks them (SecretMasker's base64 variations); standard and URL-safe alphabets."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms |= {whole, whole.rstrip("=")}  # the secret alone, as its own value
        for offset in OFFSETS:
            form = encoded_at(raw, offset, encode)[: whole_groups(raw, offset)]
            # A form this short (a 4-byte secret at offset 2 keeps 1 character) would mask random text.
            if len(form) >= MIN_SECRET_LENGTH:
                forms.add(form)
    return forms


def _docker_config_secrets(path: Path) -> list[str]:
    """The credentials of a docker config's `auths` (what `docker login` stored): passwords, identity and
    registry tokens, and `auth` itself (base64 of user:password, sent as HTTP Basic) with its password."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    auths = data.get("auths") if isinstance(data, dict) else None
    found: list[str] = []
    for entry in auths.values() if isinstance(auths, dict) else []:
        if not isinstance(entry, dict):
            continue
        for key in ("password", "identitytoken", "registrytoken", "auth"):
            if isinstance(entry.get(key), str):
                found.append(entry[key])
        if isinstance(entry.get("auth"), str):
            try:
                pair = base64.b64decode(entry["auth"]).decode("utf-8", "replace")
            except (ValueError, binascii.Error):
                continue
            # user:password (its base64 forms are `auth` with and without padding) and the password alone.
            found += [pair, pair.partition(":")[2]]
    return found
