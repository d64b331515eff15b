"""The registry client's retry and auth policy, through httpx's transport seam."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from pipeline.errors import AuthError, RegistryError
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import parse_reference

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def manifest_response() -> httpx.Response:
    return httpx.Response(
        200,
        content=MANIFEST,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": DIGEST},
    )


def test_transient_errors_are_retried_honouring_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"}), manifest_response()]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Accept", ""))
        return answers.pop(0)

    client = RegistryClient(lambda _: None, transport=httpx.MockTransport(handler))
    digest = client.resolve_digest(parse_reference("127.0.0.1:5000/demo/app:1.0.0"))
    assert digest == DIGEST
    assert len(seen) == 3
    assert "application/vnd.oci.image.index.v1+json" in seen[0]


def always_failing(status: int, code: str, message: str) -> tuple[RegistryClient, list[httpx.Request]]:
    """A client whose registry answers every request with `status` and that one error; the requests it got."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"errors": [{"code": code, "message": message}]})

    return RegistryClient(lambda _: None, transport=httpx.MockTransport(handler)), calls


def test_persistent_failure_gives_clear_error_after_bounded_attempts() -> None:
    client, calls = always_failing(500, "UNKNOWN", "disk full")
    with pytest.raises(RegistryError, match="kept failing \\(UNKNOWN: disk full\\) after 5 attempts"):
        client.resolve_digest(parse_reference("127.0.0.1:5000/demo/app:1.0.0"))
    assert len(calls) == 5


def test_client_errors_are_not_retried() -> None:
    client, calls = always_failing(400, "MANIFEST_INVALID", "bad")
    with pytest.raises(RegistryError, match="MANIFEST_INVALID: bad"):
        client.get_manifest(parse_reference("127.0.0.1:5000/demo/app:1.0.0"))
    assert len(calls) == 1


def test_bearer_token_flow_uses_basic_credentials_at_the_realm() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            assert request.url.params["scope"] == "repository:team/app:pull"
            assert request.url.params["service"] == "reg"
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"token": "T0K"})
        if request.headers.get("Authorization") == "Bearer T0K":
            return manifest_response()
        return httpx.Response(
            401,
            headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",service="reg"'},
        )

    client = RegistryClient(lambda _: Credentials("u", "p"), transport=httpx.MockTransport(handler))
    assert client.resolve_digest(parse_reference("reg.example.com/team/app:1")) == DIGEST


def test_basic_challenge_without_credentials_names_the_fix() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    client = RegistryClient(lambda _: None, transport=httpx.MockTransport(handler))
    with pytest.raises(AuthError, match="requires credentials and the docker config has none"):
        client.resolve_digest(parse_reference("127.0.0.1:5001/demo/app:1"))


def test_plain_http_only_for_loopback_and_listed_registries() -> None:
    client = RegistryClient(lambda _: None, insecure_registries=["build.lan:5000"])
    assert client.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000/v2"
    assert client.base_url("build.lan:5000") == "http://build.lan:5000/v2"
    assert client.base_url("registry.example.com") == "https://registry.example.com/v2"
    assert client.base_url("docker.io") == "https://registry-1.docker.io/v2"


@pytest.mark.parametrize("landed", [True, False])
def test_a_blob_upload_whose_answer_was_lost_is_not_reported_as_failed(landed: bool) -> None:
    """The PUT completing an upload reached the registry but its answer was lost: the retried PUT finds the
    (single-use) session gone. The blob is then there, or the upload starts over in a new session."""
    import io

    data = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sessions: list[str] = []
    puts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sessions.append(f"/v2/demo/app/blobs/uploads/{len(sessions)}")
            return httpx.Response(202, headers={"Location": sessions[-1]})
        if request.method == "PUT":
            puts.append(request.url.path)
            if len(puts) == 1:
                raise httpx.ReadError("connection lost after the registry acted", request=request)
            if request.url.path == sessions[0]:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "unknown"}]})
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if request.method == "HEAD":
            return httpx.Response(200 if landed else 404)
        return httpx.Response(500)

    client = RegistryClient(lambda _: None, transport=httpx.MockTransport(handler))
    client.upload_blob(parse_reference("127.0.0.1:5000/demo/app:x").repository, digest, io.BytesIO(data))
    assert len(sessions) == (1 if landed else 2)
    assert puts[-1] == sessions[-1]
