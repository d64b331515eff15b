"""Registry notifications: a push of an image to a registry, as Docker Distribution, ACR or Docker Hub
tells it, authenticated and turned into the base updates it describes.

Pure: the endpoint's secret, the headers (or the secret in the path) and the raw body in; a tuple of
`BaseUpdate`s and `Ignored`s (or an exception) out. Authentication comes before parsing:
- Distribution and ACR send a header we configure (Distribution's `notifications.endpoints[].headers`,
  an ACR webhook's custom headers): its value must be the secret, or `Bearer <secret>`;
- Docker Hub can neither sign nor send headers: the secret is the last segment of the URL path.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.triggers.webhooks import (
    BadDelivery,
    DeliveryRejected,
    Ignored,
    NotAuthentic,
    delivery_id_from,
    json_object,
)

RegistrySource = Literal["distribution", "acr", "dockerhub"]
REGISTRY_SOURCES: tuple[RegistrySource, ...] = ("distribution", "acr", "dockerhub")
DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
DEFAULT_HEADER = "Authorization"
DOCKER_HUB = "docker.io"

# What a push of an image is: a manifest or an index (a blob push is a layer or a config).
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    }
)
# Patterns are used with fullmatch; the reference they make is handed to `pipeline trigger` as an argument.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT}){{0,15}}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


@dataclass(frozen=True)
class BaseUpdate:
    """An image pushed to `reference` (`host/repository:tag`, or `host/repository@digest` for a push by
    digest alone), now `digest` (None: the sender does not say, as Docker Hub)."""

    source: RegistrySource
    delivery_id: str
    reference: str
    digest: str | None

    @property
    def hint(self) -> bool:
        return is_hint(self.reference)


def is_hint(reference: str) -> bool:
    """A push by digest moves no tag: it only hints that the repository changed."""
    return "@" in reference


def repository_of(reference: str) -> str:
    """`host/repository`: a base update's reference without its tag or digest."""
    if is_hint(reference):
        return reference.partition("@")[0]
    return reference.rpartition(":")[0]


Notification = tuple[BaseUpdate | Ignored, ...]


def _equal(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)


def check_header(secret: bytes, headers: Mapping[str, str], name: str) -> None:
    """The configured header carries the secret, alone or as `Bearer <secret>` (compared in constant time)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name.lower())
    if not value:
        raise NotAuthentic(f"unauthenticated notification: the {name} header is missing")
    given = value.strip().encode("latin-1", "replace")
    # Both comparisons run, so the time taken does not tell which form was close.
    plain, bearer = _equal(secret, given), _equal(b"Bearer " + secret, given)
    if not (plain or bearer):
        raise NotAuthentic(f"bad secret: the {name} header does not match the registry secret")


def check_path_secret(secret: bytes, given: str) -> None:
    if not given:
        raise NotAuthentic(
            "unauthenticated notification: the URL has no secret (POST /hooks/registry/dockerhub/SECRET)"
        )
    if not _equal(secret, given.encode("utf-8", "replace")):
        raise NotAuthentic("bad secret: the URL's secret does not match the Docker Hub secret")


def read_distribution(headers: Mapping[str, str], body: bytes, secret: bytes, header: str) -> Notification:
    """Docker Distribution's envelope (`{"events": [...]}`): each manifest push is a base update, each
    other event (pulls, blob pushes, deletes) is ignored."""
    check_header(secret, headers, header)
    payload = json_object(body)
    events = payload.get("events")
    if not isinstance(events, list):
        raise BadDelivery("events: expected the list of a Distribution notification envelope")
    return tuple(_event("distribution", event, body) for event in events)


def read_acr(headers: Mapping[str, str], body: bytes, secret: bytes, header: str) -> Notification:
    """An ACR webhook: one event, `{"id", "action", "target": {...}, "request": {"host", ...}}`."""
    check_header(secret, headers, header)
    return (_event("acr", json_object(body), body),)


def read_dockerhub(path_secret: str, body: bytes, secret: bytes) -> Notification:
    """A Docker Hub webhook: `push_data.tag` of `repository.repo_name` on docker.io; no digest, no id
    (the body's hash stands in: a redelivery is a duplicate)."""
    check_path_secret(secret, path_secret)
    payload = json_object(body)
    delivery_id = delivery_id_from(None, "id", body, "dockerhub")
    push_data, repository = payload.get("push_data"), payload.get("repository")
    if not isinstance(push_data, dict) or not isinstance(repository, dict):
        raise BadDelivery("expected a Docker Hub push: push_data and repository objects")
    name = _text(repository, "repo_name", _REPOSITORY, "a repository like org/name", "repository.")
    tag = _text(push_data, "tag", _TAG, "a tag", "push_data.")
    if "/" not in name:  # an official image: docker.io/library/NAME, as references normalise it
        name = f"library/{name}"
    return (BaseUpdate("dockerhub", delivery_id, f"{DOCKER_HUB}/{name}:{tag}", None),)


def _event(source: RegistrySource, event: Any, body: bytes) -> BaseUpdate | Ignored:
    if not isinstance(event, dict):
        raise BadDelivery("an event is not a JSON object")
    raw_id = event.get("id")
    # Distribution and ACR give every event its own id; without one, the whole body's hash.
    delivery_id = delivery_id_from(str(raw_id) if raw_id is not None else None, "id", body, source)
    action = event.get("action")
    if action != "push":
        return Ignored(source, delivery_id, f"action {str(action)!r:.40} is not a push")
    target, request = event.get("target"), event.get("request")
    if not isinstance(target, dict):
        raise BadDelivery("target: expected an object")
    media_type = target.get("mediaType")
    if media_type not in MANIFEST_TYPES:
        return Ignored(source, delivery_id, f"a push of {str(media_type)!r:.80}, not of an image manifest")
    if not isinstance(request, dict):
        raise BadDelivery("request: expected an object with the registry's host")
    host = _text(request, "host", _HOST, "the registry's host[:port]", "request.")
    repository = _text(target, "repository", _REPOSITORY, "a repository", "target.")
    digest = _text(target, "digest", _DIGEST, "a sha256: digest", "target.")
    tag = target.get("tag")
    if tag in (None, ""):
        return BaseUpdate(source, delivery_id, f"{host}/{repository}@{digest}", digest)
    tag = _text(target, "tag", _TAG, "a tag", "target.")
    return BaseUpdate(source, delivery_id, f"{host}/{repository}:{tag}", digest)


def _text(data: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str, prefix: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadDelivery(f"{prefix}{name}: expected {what}, got {value!r:.80}")
    return value


@dataclass(frozen=True)
class RegistryEndpoints:
    """The registry endpoints serve answers (POST /hooks/registry/SOURCE), each with its own secret
    (an endpoint without one is not served: fail closed), and the branch base updates run on."""

    secrets: Mapping[RegistrySource, bytes]
    header: str = DEFAULT_HEADER  # the header Distribution and ACR send the secret in
    ref: str = "refs/heads/main"


HOOKS_PREFIX = "/hooks/registry/"


def read_notification(endpoints: RegistryEndpoints, path: str, headers: Mapping[str, str], body: bytes) -> Notification:
    """The notification POSTed to `path` (under HOOKS_PREFIX): authenticated with that endpoint's secret.
    An endpoint that is not configured is NotServed (404), whatever the request."""
    source, _, rest = path.removeprefix(HOOKS_PREFIX).partition("/")
    secret = endpoints.secrets.get(source)  # type: ignore[call-overload]
    if secret is None or (rest and source != "dockerhub"):
        raise NotServed(path)
    if source == "distribution":
        return read_distribution(headers, body, secret, endpoints.header)
    if source == "acr":
        return read_acr(headers, body, secret, endpoints.header)
    return read_dockerhub(rest, body, secret)


class NotServed(DeliveryRejected):
    """No registry endpoint at this path (never configured, or a mistyped source)."""

    def __init__(self, path: str) -> None:
        source = path.removeprefix(HOOKS_PREFIX).partition("/")[0]  # not what follows: a secret, maybe
        super().__init__(f"not found: no registry endpoint {HOOKS_PREFIX}{source:.40} is configured", 404)
