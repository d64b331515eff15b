"""What anyone can push next to an image (referrers, `.sig`/`.att` layers) is read defensively: entries that
are not objects, lack a digest or hold something other than a bundle are skipped, never a traceback."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipeline.registry.client import OCI_INDEX, OCI_MANIFEST, Manifest
from pipeline.registry.reference import ImageRef, Repository, parse_repository
from pipeline.signing import keys
from pipeline.signing.attached import attached
from pipeline.signing.payloads import SLSA_PROVENANCE_V1, in_toto_statement
from pipeline.signing.policy import AttestationRequirement, KeyRequirement
from pipeline.signing.signer import key_bundle
from pipeline.signing.storage import (
    BUNDLE_MEDIA_TYPE,
    DSSE_MEDIA_TYPE,
    attestation_tag,
    fallback_referrers_tag,
    read_bundles,
    read_legacy_attestations,
)
from pipeline.signing.verify import verify_digest

REPO = parse_repository("r.example/shop/app")
SUBJECT = "sha256:" + "ab" * 32


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class FakeRegistry:
    """Manifests and blobs in memory; no referrers API (the fallback index is used)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}

    def blob(self, data: bytes) -> str:
        self.blobs[_digest(data)] = data
        return _digest(data)

    def manifest(self, document: Any, tag: str | None = None) -> str:
        body = json.dumps(document).encode()
        self.manifests[_digest(body)] = body
        if tag:
            self.tags[tag] = _digest(body)
        return _digest(body)

    def referrers(self, repository: Repository, digest: str) -> None:
        return None

    def resolve_digest(self, ref: ImageRef) -> str | None:
        return ref.digest or self.tags.get(ref.tag or "")

    def get_manifest(self, ref: ImageRef) -> Manifest:
        digest = self.resolve_digest(ref)
        assert digest is not None
        return Manifest(OCI_MANIFEST, digest, self.manifests[digest])

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest:
        return Manifest(OCI_MANIFEST, digest, self.manifests[digest])

    def get_blob(self, repository: Repository, digest: str) -> bytes:
        return self.blobs[digest]

    def list_tags(self, repository: Repository) -> list[str]:
        return sorted(self.tags)


def _referrer(registry: FakeRegistry, blob: bytes) -> dict[str, Any]:
    layer = {"mediaType": BUNDLE_MEDIA_TYPE, "digest": registry.blob(blob), "size": len(blob)}
    manifest = {"schemaVersion": 2, "artifactType": BUNDLE_MEDIA_TYPE, "layers": [layer]}
    return {"mediaType": OCI_MANIFEST, "artifactType": BUNDLE_MEDIA_TYPE, "digest": registry.manifest(manifest)}


def poisoned() -> tuple[FakeRegistry, keys.SigningKey]:
    registry = FakeRegistry()
    registry.manifests[SUBJECT] = b"{}"
    key = keys.generate()
    good = json.dumps(key_bundle(key, in_toto_statement(str(REPO), SUBJECT, SLSA_PROVENANCE_V1, {"a": 1}))).encode()
    listed: list[Any] = [
        _referrer(registry, b"[1, 2]"),  # a bundle that is not an object
        _referrer(registry, b"not json"),
        {"artifactType": BUNDLE_MEDIA_TYPE},  # no digest
        {"artifactType": BUNDLE_MEDIA_TYPE, "digest": 7},
        "a string",
        _referrer(registry, good),
    ]
    registry.manifest(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}, fallback_referrers_tag(SUBJECT)
    )
    layers: list[Any] = [
        {"mediaType": DSSE_MEDIA_TYPE},  # no digest
        "a string",
        {"mediaType": DSSE_MEDIA_TYPE, "digest": registry.blob(b"[]"), "annotations": "not a map"},
    ]
    registry.manifest({"schemaVersion": 2, "layers": layers}, attestation_tag(SUBJECT))
    return registry, key


def test_malformed_entries_are_skipped_and_the_good_one_is_read() -> None:
    registry, key = poisoned()
    assert len(read_bundles(registry, REPO, SUBJECT)) == 1  # type: ignore[arg-type]
    assert read_legacy_attestations(registry, REPO, SUBJECT)[0] == []  # type: ignore[arg-type]
    verified = verify_digest(registry, REPO, SUBJECT, [KeyRequirement(key.public, "k")], SLSA_PROVENANCE_V1)  # type: ignore[arg-type]
    assert verified.verified and [a.predicate for a in verified.attestations] == [{"a": 1}]
    listing = attached(registry, REPO, SUBJECT)  # type: ignore[arg-type]
    assert [item.kind for item in listing.items].count("attestation") == 1
    assert "signature" not in [item.kind for item in listing.items]  # unreadable bundles are "other"


def test_a_predicate_of_the_wrong_shape_is_refused_not_raised() -> None:
    wanted = AttestationRequirement(SLSA_PROVENANCE_V1, "provenance", (), ("https://git.example/*",))
    for predicate in (
        {"buildDefinition": {"resolvedDependencies": 5}},
        {"buildDefinition": {"resolvedDependencies": [{"digest": 7}]}},
        [1],
    ):
        assert wanted.accept(predicate)
