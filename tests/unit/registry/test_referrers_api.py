"""The referrers API: asked once per registry; a 404 means the registry has none (distribution-spec: a
registry with the API answers 200 with an empty index)."""

from __future__ import annotations

import httpx

from pipeline.registry.client import OCI_INDEX, RegistryClient
from pipeline.registry.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


def client(status: int, seen: list[str]) -> RegistryClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if status == 200:
            body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": DIGEST, "size": 2}]}
            return httpx.Response(200, json=body, headers={"Content-Type": OCI_INDEX})
        return httpx.Response(status)

    return RegistryClient(lambda _: None, insecure_registries=["r.example"], transport=httpx.MockTransport(handler))


def test_a_registry_without_the_referrers_api_is_asked_once() -> None:
    seen: list[str] = []
    registry = client(404, seen)
    app, other = parse_reference("r.example/shop/app").repository, parse_reference("r.example/shop/base").repository
    assert registry.referrers(app, DIGEST) is None
    assert registry.referrers(other, DIGEST) is None
    assert registry.referrers(app, "sha256:" + "cd" * 32) is None
    assert [p for p in seen if "/referrers/" in p] == [f"/v2/shop/app/referrers/{DIGEST}"]


def test_a_registry_with_the_api_is_asked_every_time() -> None:
    seen: list[str] = []
    registry = client(200, seen)
    app = parse_reference("r.example/shop/app").repository
    assert registry.referrers(app, DIGEST) == [{"digest": DIGEST, "size": 2}]
    assert registry.referrers(app, DIGEST) == [{"digest": DIGEST, "size": 2}]
    assert len([p for p in seen if "/referrers/" in p]) == 2
