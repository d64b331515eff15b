"""Image references (registry/repository[:tag][@digest]) parsed against the distribution grammar."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pipeline.errors import ConfigError

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

DOCKER_HUB = "docker.io"
MAX_NAME_LENGTH = 255
MAX_PORT = 65535


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


@dataclass(frozen=True)
class Repository:
    """A repository in a registry: `host[:port]/path`."""

    registry: str
    path: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}"

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self, tag=tag)

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self, digest=digest)


@dataclass(frozen=True)
class ImageRef:
    """A repository plus a tag and/or a digest."""

    repository: Repository
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = str(self.repository)
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_repository(text: str) -> Repository:
    """Parse `host[:port]/path` (no tag or digest); raise ConfigError with the reason."""
    if not text:
        raise ConfigError("empty repository name")
    _refuse_scheme(text)
    if "@" in text or ":" in text.rsplit("/", 1)[-1] and "/" in text:
        raise ConfigError(f"'{text}' is a repository name and may not carry a tag or digest")
    first, _, rest = text.partition("/")
    if rest and _looks_like_domain(first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, text
        if "/" not in path:
            path = f"library/{path}"
    validate_registry_host(registry)
    if not PATH_RE.match(path):
        raise ConfigError(
            f"'{path}' is not a valid repository path "
            "(lowercase letters, digits and separators . _ __ - between them, components joined by /)"
        )
    if len(f"{registry}/{path}") > MAX_NAME_LENGTH:
        raise ConfigError(f"repository name '{text}' is longer than {MAX_NAME_LENGTH} characters")
    return Repository(registry, path)


def _refuse_scheme(text: str) -> None:
    scheme, sep, rest = text.partition("://")
    if sep:
        raise ConfigError(f"'{text}' is a URL; write it without '{scheme}://' ('{rest}')")


def validate_registry_host(host: str) -> str:
    """`host[:port]` as the reference grammar has it, with the port in 1-65535."""
    _refuse_scheme(host)
    if not DOMAIN_RE.match(host):
        raise ConfigError(f"'{host}' is not a valid registry host[:port]")
    _, bracket, after = host.rpartition("]")
    port = (after if bracket else host).partition(":")[2]
    if port and (len(port) > len(str(MAX_PORT)) or not 0 < int(port) <= MAX_PORT):
        raise ConfigError(f"'{host}' has port {port}, outside 1-{MAX_PORT}")
    return host


def validate_prefix(text: str) -> str:
    """A repository prefix (`registry:` in pipelines.yaml): image X pushes to `<prefix>/X`, so a bare
    `host[:port]` is as good as `host[:port]/path` or a Docker Hub namespace."""
    first, slash, _ = text.partition("/")
    if not slash and _looks_like_domain(first):
        if "@" in text:
            raise ConfigError(f"'{text}' is a repository prefix and may not carry a digest")
        return validate_registry_host(text)
    parse_repository(text)
    return text


def parse_reference(text: str) -> ImageRef:
    """Parse `repository[:tag][@digest]`."""
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise ConfigError(f"'{digest}' is not a valid digest (expected sha256:<64 hex>)")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
        validate_tag(tag)
    return ImageRef(parse_repository(name), tag=tag, digest=digest)


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ConfigError(f"'{tag}' is not a valid tag (1-128 of letters, digits, _ . -, not starting with . or -)")
    return tag


def is_loopback_host(registry: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1, with or without a port."""
    host = registry
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
