"""Webhook deliveries: which forge sent one, whether it is authentic, and the push it describes.

Pure: headers and the raw body in, a `Push` (or why it is `Ignored`, or an exception) out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.errors import PipelineError

# Git forges, then registries (pipeline.triggers.registry_hooks).
Source = Literal["github", "gitlab", "generic", "distribution", "acr", "dockerhub"]

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# Patterns are used with fullmatch (`$` would accept a trailing newline).
# A git ref as a forge sends it; narrower than git-check-ref-format(1), and never an option (`-x`).
_REF = re.compile(r"refs/(?:heads|tags)/[A-Za-z0-9._/+@-]{1,240}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
GITLAB_PUSH_EVENTS = ("Push Hook", "Tag Push Hook")


class DeliveryRejected(PipelineError):
    """A delivery that must not run anything; `http_status` is what the sender is answered."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class NotAuthentic(DeliveryRejected):
    """Unsigned, wrongly signed, or with the wrong token."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 401)


class BadDelivery(DeliveryRejected):
    """Authentic, but not a payload we understand."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400)


@dataclass(frozen=True)
class Push:
    """A push to `ref` that moved it from `before` to `after` (ZERO_SHA before: a new ref)."""

    source: Source
    delivery_id: str
    ref: str
    before: str
    after: str


@dataclass(frozen=True)
class Ignored:
    """An authentic delivery that runs nothing (a ping, another event, a deleted branch)."""

    source: Source
    delivery_id: str
    reason: str


def signature_header(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value a sender computes: `sha256=` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _equal(expected: str, given: str) -> bool:
    # Header values arrive as latin-1 text; compare bytes so non-ASCII input can't raise.
    return hmac.compare_digest(expected.encode("latin-1", "replace"), given.encode("latin-1", "replace"))


def check_signature(secret: bytes, body: bytes, header: str | None) -> None:
    if not header:
        raise NotAuthentic("unsigned delivery: X-Hub-Signature-256 is missing")
    if not _equal(signature_header(secret, body), header.strip().lower()):
        raise NotAuthentic("bad signature: X-Hub-Signature-256 does not match the body and the secret")


def check_token(secret: bytes, header: str | None) -> None:
    if not header:
        raise NotAuthentic("unauthenticated delivery: X-Gitlab-Token is missing")
    if not _equal(secret.decode("latin-1"), header):
        raise NotAuthentic("bad token: X-Gitlab-Token does not match the secret")


def detect_source(headers: Mapping[str, str]) -> Source:
    if "x-github-event" in headers:
        return "github"
    if "x-gitlab-event" in headers:
        return "gitlab"
    return "generic"


def read_delivery(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> Push | Ignored:
    """Authenticate, then parse. `secret` None means no authentication (--insecure-no-secret).

    Raises NotAuthentic before the body is parsed, BadDelivery for an authentic but unusable body.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    source = detect_source(lowered)
    if secret is not None:
        if source == "gitlab":
            check_token(secret, lowered.get("x-gitlab-token"))
        else:
            check_signature(secret, body, lowered.get("x-hub-signature-256"))
    if source == "github":
        event = lowered["x-github-event"]
        delivery_id = delivery_id_from(lowered.get("x-github-delivery"), "X-GitHub-Delivery", body, source)
        if event == "ping":
            return Ignored(source, delivery_id, "ping")
        if event != "push":
            return Ignored(source, delivery_id, f"event {event!r} is not a push")
    elif source == "gitlab":
        event = lowered["x-gitlab-event"]
        delivery_id = delivery_id_from(lowered.get("x-gitlab-event-uuid"), "X-Gitlab-Event-UUID", body, source)
        if event not in GITLAB_PUSH_EVENTS:
            return Ignored(source, delivery_id, f"event {event!r} is not a push")
    payload = json_object(body)
    if source == "generic":
        raw_id = payload.get("id")
        delivery_id = delivery_id_from(str(raw_id) if raw_id is not None else None, "id", body, source)
    push = Push(
        source,
        delivery_id,
        _field(payload, "ref", _REF, "a ref like refs/heads/main"),
        _field(payload, "before", _SHA, "a full commit sha"),
        _field(payload, "after", _SHA, "a full commit sha"),
    )
    if push.after.strip("0") == "":
        return Ignored(source, delivery_id, f"{push.ref} was deleted")
    return push


def delivery_id_from(value: str | None, name: str, body: bytes, source: Source) -> str:
    """The sender's id, namespaced by source; without one, the body's hash (the same push twice is
    the same delivery)."""
    if value is None or value == "":
        return f"{source}:body-sha256:{hashlib.sha256(body).hexdigest()}"
    if not _DELIVERY_ID.fullmatch(value):
        raise BadDelivery(f"{name}: not a delivery id (letters, digits, '.', '_', ':', '-'; at most 128)")
    return f"{source}:{value}"


def json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except RecursionError:
        raise BadDelivery("the body is not a push: its JSON is nested too deeply to read") from None
    except ValueError as exc:  # not JSON, not UTF-8, or a number longer than Python reads
        raise BadDelivery(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadDelivery("the body is not a JSON object")
    return payload


def _field(payload: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadDelivery(f"{name}: expected {what}, got {value!r:.80}")
    return value
