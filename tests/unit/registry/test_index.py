"""Assembling an image index (pure): deterministic bytes, platforms from configs, duplicate platforms refused."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from pipeline.errors import PipelineError
from pipeline.registry.client import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, Manifest
from pipeline.registry.index import (
    IndexEntry,
    Platform,
    PlatformClash,
    _refuses_kind,
    image_descriptors,
    index_body,
    is_attestation_manifest,
    platforms_in,
)

AMD64 = IndexEntry("sha256:" + "a" * 64, DOCKER_MANIFEST, 528, Platform("linux", "amd64"))
ARM64 = IndexEntry("sha256:" + "b" * 64, DOCKER_MANIFEST, 529, Platform("linux", "arm64", "v8"))
LTSC2019 = IndexEntry(
    "sha256:" + "c" * 64,
    DOCKER_MANIFEST,
    530,
    Platform.from_config({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}, "w"),
)


def test_the_same_children_give_the_same_bytes_compact_and_in_the_given_order() -> None:
    first = index_body([AMD64, ARM64])
    again = index_body([IndexEntry(AMD64.digest, AMD64.media_type, AMD64.size, Platform("linux", "amd64")), ARM64])
    assert first == again
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(again).hexdigest()
    assert b" " not in first and b"\n" not in first
    document = json.loads(first)
    assert document["schemaVersion"] == 2 and document["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in document["manifests"]] == [AMD64.digest, ARM64.digest]
    assert document["manifests"][1] == {
        "mediaType": DOCKER_MANIFEST,
        "digest": ARM64.digest,
        "size": 529,
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    }
    assert index_body([ARM64, AMD64]) != first  # the order is the caller's, and it is kept
    assert json.loads(index_body([AMD64], DOCKER_LIST))["mediaType"] == DOCKER_LIST


def test_os_version_only_where_the_config_has_it() -> None:
    document = json.loads(index_body([AMD64, LTSC2019]))
    assert document["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert document["manifests"][1]["platform"] == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1",
    }
    assert LTSC2019.platform.text() == "windows/amd64 10.0.17763.1"
    assert ARM64.platform.text() == "linux/arm64/v8"


def test_two_children_of_one_platform_are_refused() -> None:
    twin = IndexEntry("sha256:" + "d" * 64, DOCKER_MANIFEST, 1, Platform("linux", "amd64"))
    with pytest.raises(PlatformClash, match="are both linux/amd64") as raised:
        index_body([AMD64, twin])
    assert isinstance(raised.value, PipelineError)
    # arm64 without a variant is arm64/v8 to every puller.
    with pytest.raises(PlatformClash):
        index_body([ARM64, IndexEntry("sha256:" + "e" * 64, DOCKER_MANIFEST, 1, Platform("linux", "arm64"))])
    # Windows versions are different platforms: that is what an index of them is for.
    ltsc2022 = IndexEntry("sha256:" + "f" * 64, DOCKER_MANIFEST, 1, Platform("windows", "amd64", "", "10.0.20348.1"))
    assert len(json.loads(index_body([LTSC2019, ltsc2022]))["manifests"]) == 2


def test_a_config_without_a_platform_is_an_error() -> None:
    with pytest.raises(PipelineError, match="names no os and architecture"):
        Platform.from_config({"architecture": "amd64"}, "repo@sha256:x")


@pytest.mark.parametrize(
    ("status", "code", "refused"),
    [
        (415, None, True),
        (400, "MANIFEST_INVALID", True),
        (400, "UNSUPPORTED", True),
        (400, "MANIFEST_BLOB_UNKNOWN", False),  # a child is missing: a manifest list would not help
        (401, "UNAUTHORIZED", False),
        (404, "NAME_UNKNOWN", False),
    ],
)
def test_which_answers_mean_the_registry_does_not_take_an_oci_index(
    status: int, code: str | None, refused: bool
) -> None:
    body = {"errors": [{"code": code, "message": "x"}]} if code else None
    assert _refuses_kind(httpx.Response(status, json=body)) is refused


def test_buildx_attestation_manifests_are_not_images_of_an_index() -> None:
    """buildx's provenance/SBOM manifests (platform unknown/unknown, annotated) are left out of an index's
    platforms, wherever they stand in its list."""
    attestation = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "3" * 64,
        "size": 840,
        "annotations": {
            "vnd.docker.reference.digest": "sha256:" + "1" * 64,
            "vnd.docker.reference.type": "attestation-manifest",
        },
        "platform": {"architecture": "unknown", "os": "unknown"},
    }
    amd64 = {"digest": "sha256:" + "1" * 64, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}
    arm64 = {"digest": "sha256:" + "2" * 64, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}}
    unknown_image = {"digest": "sha256:" + "4" * 64, "size": 1, "platform": {"os": "unknown", "architecture": "x"}}
    body = json.dumps({"mediaType": OCI_INDEX, "manifests": [attestation, amd64, arm64, unknown_image]}).encode()
    manifest = Manifest(OCI_INDEX, "sha256:" + "9" * 64, body)
    assert is_attestation_manifest(attestation) and not is_attestation_manifest(amd64)
    assert image_descriptors(manifest.json()) == [amd64, arm64, unknown_image]  # an image of an odd platform stays
    assert platforms_in(manifest) == [
        (amd64["digest"], "linux/amd64"),
        (arm64["digest"], "linux/arm64"),
        (unknown_image["digest"], "unknown/x"),
    ]
