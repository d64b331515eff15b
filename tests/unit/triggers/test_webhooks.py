"""Webhook deliveries: authentication (HMAC, GitLab token) and parsing of GitHub, GitLab and generic pushes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from pipeline.triggers.rules import ZERO_SHA
from pipeline.triggers.webhooks import (
    BadDelivery,
    Ignored,
    NotAuthentic,
    Push,
    read_delivery,
    signature_header,
)

SECRET = b"s3cret-webhook-key"
BEFORE = "a" * 40
AFTER = "b" * 40


def body_of(**fields: object) -> bytes:
    return json.dumps({"ref": "refs/heads/main", "before": BEFORE, "after": AFTER, **fields}).encode()


def github(body: bytes, event: str = "push", delivery: str = "d-1", secret: bytes = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature_header(secret, body),
    }


def test_signature_header_is_githubs_hmac_sha256() -> None:
    body = b'{"zen": "Design for failure."}'
    assert signature_header(SECRET, body) == "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def test_github_push_is_authenticated_and_parsed() -> None:
    body = body_of(repository={"full_name": "org/shop"}, deleted=False)
    assert read_delivery(github(body), body, SECRET) == Push("github", "github:d-1", "refs/heads/main", BEFORE, AFTER)


def test_header_names_are_case_insensitive() -> None:
    body = body_of()
    headers = {k.lower(): v for k, v in github(body).items()}
    assert isinstance(read_delivery(headers, body, SECRET), Push)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=" + "0" * 40,
        signature_header(b"another secret", body_of()),
        signature_header(SECRET, body_of())[:-2],
        "sha256=ünïcödé",
    ],
)
def test_unsigned_or_wrongly_signed_github_deliveries_are_not_authentic(signature: str | None) -> None:
    body = body_of()
    headers = github(body)
    del headers["X-Hub-Signature-256"]
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    with pytest.raises(NotAuthentic) as caught:
        read_delivery(headers, body, SECRET)
    assert caught.value.http_status == 401


def test_a_signature_covers_the_exact_bytes() -> None:
    body = body_of()
    headers = github(body)
    tampered = body.replace(AFTER.encode(), ("c" * 40).encode())
    with pytest.raises(NotAuthentic):
        read_delivery(headers, tampered, SECRET)


def test_authentication_comes_before_parsing() -> None:
    # Garbage with a wrong signature is a 401, not a 400: nothing about the body is believed first.
    with pytest.raises(NotAuthentic):
        read_delivery({"X-Hub-Signature-256": "sha256=00"}, b"not json", SECRET)


def test_uppercase_hex_signature_is_accepted() -> None:
    body = body_of()
    headers = github(body)
    headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].upper().replace("SHA256=", "sha256=")
    assert isinstance(read_delivery(headers, body, SECRET), Push)


def test_github_ping_and_other_events_are_ignored_once_authentic() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    ping = read_delivery(github(body, event="ping"), body, SECRET)
    assert ping == Ignored("github", "github:d-1", "ping")
    other = read_delivery(github(body, event="issues", delivery="d-2"), body, SECRET)
    assert isinstance(other, Ignored) and "issues" in other.reason


def test_branch_deletion_is_ignored() -> None:
    body = body_of(after=ZERO_SHA, deleted=True)
    result = read_delivery(github(body), body, SECRET)
    assert isinstance(result, Ignored) and "deleted" in result.reason


def test_new_branch_keeps_the_zero_before() -> None:
    body = body_of(before=ZERO_SHA)
    result = read_delivery(github(body), body, SECRET)
    assert isinstance(result, Push) and result.before == ZERO_SHA


def test_gitlab_push_uses_the_token_and_the_event_uuid() -> None:
    body = body_of(project={"path_with_namespace": "org/shop"}, checkout_sha=AFTER)
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event-UUID": "u-1"}
    assert read_delivery(headers, body, SECRET) == Push("gitlab", "gitlab:u-1", "refs/heads/main", BEFORE, AFTER)
    tag_body = body_of(ref="refs/tags/v1.2.3")
    tag_push = read_delivery({**headers, "X-Gitlab-Event": "Tag Push Hook"}, tag_body, SECRET)
    assert isinstance(tag_push, Push) and tag_push.ref == "refs/tags/v1.2.3"


@pytest.mark.parametrize("token", [None, "", "wrong", SECRET.decode() + "x", SECRET.decode()[:-1]])
def test_gitlab_wrong_or_missing_token_is_not_authentic(token: str | None) -> None:
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "u-1"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    with pytest.raises(NotAuthentic):
        read_delivery(headers, body_of(), SECRET)


def test_gitlab_hmac_signature_is_not_a_substitute_for_the_token() -> None:
    body = body_of()
    headers = {"X-Gitlab-Event": "Push Hook", "X-Hub-Signature-256": signature_header(SECRET, body)}
    with pytest.raises(NotAuthentic):
        read_delivery(headers, body, SECRET)


def test_gitlab_non_push_events_are_ignored() -> None:
    headers = {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event-UUID": "u"}
    assert isinstance(read_delivery(headers, b"{}", SECRET), Ignored)


def test_generic_json_is_signed_like_github_and_carries_its_id() -> None:
    body = body_of(id="build-42")
    headers = {"X-Hub-Signature-256": signature_header(SECRET, body), "Content-Type": "application/json"}
    assert read_delivery(headers, body, SECRET) == Push("generic", "generic:build-42", "refs/heads/main", BEFORE, AFTER)
    del headers["X-Hub-Signature-256"]
    with pytest.raises(NotAuthentic):
        read_delivery(headers, body, SECRET)


def test_without_an_id_the_body_hash_identifies_the_delivery() -> None:
    body = body_of()
    headers = {"X-Hub-Signature-256": signature_header(SECRET, body)}
    first = read_delivery(headers, body, SECRET)
    again = read_delivery(headers, body, SECRET)
    assert isinstance(first, Push) and first == again
    assert first.delivery_id == f"generic:body-sha256:{hashlib.sha256(body).hexdigest()}"


def test_without_a_secret_nothing_is_checked() -> None:
    body = body_of(id="x")
    assert isinstance(read_delivery({}, body, None), Push)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ref": "main"}, "ref"),
        ({"ref": "refs/heads/--upload-pack"}, None),  # fine: always passed as an option value, never a shell
        ({"ref": "refs/heads/a b"}, "ref"),
        ({"ref": "refs/heads/x\n"}, "ref"),
        ({"ref": 7}, "ref"),
        ({"before": "abc"}, "before"),
        ({"after": "B" * 40}, "after"),
        ({"after": None}, "after"),
        ({"id": "has space"}, "id"),
    ],
)
def test_authentic_but_invalid_payloads_are_bad_requests(fields: dict[str, object], message: str | None) -> None:
    body = body_of(**fields)
    headers = {"X-Hub-Signature-256": signature_header(SECRET, body)}
    if message is None:
        assert isinstance(read_delivery(headers, body, SECRET), Push)
        return
    with pytest.raises(BadDelivery) as caught:
        read_delivery(headers, body, SECRET)
    assert caught.value.http_status == 400
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("body", [b"[1, 2]", b"\xff\xfe", b"{"])
def test_non_object_bodies_are_bad_requests(body: bytes) -> None:
    with pytest.raises(BadDelivery):
        read_delivery({"X-Hub-Signature-256": signature_header(SECRET, body)}, body, SECRET)
