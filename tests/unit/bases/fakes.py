"""A registry in memory for the bases unit tests: tags to digests, manifests by digest (unit tests need
no services; the integration tests use the real registry)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pipeline.registry.client import Manifest
from pipeline.registry.reference import ImageRef, Repository

INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE = "application/vnd.oci.image.manifest.v1+json"


def manifest(body: dict[str, Any], media_type: str) -> Manifest:
    raw = json.dumps(body, sort_keys=True).encode()
    return Manifest(media_type, "sha256:" + hashlib.sha256(raw).hexdigest(), raw)


class FakeRegistry:
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}  # "repository:tag" -> digest
        self.manifests: dict[str, Manifest] = {}
        self.heads: list[str] = []  # each tag looked up, in order

    def image(self, reference: str, content: str) -> str:
        """Push a one-layer image to `reference` (repository:tag); its digest."""
        found = manifest({"mediaType": IMAGE, "config": {"digest": content}, "layers": []}, IMAGE)
        self.manifests[found.digest] = found
        self.tags[reference] = found.digest
        return found.digest

    def index(self, reference: str, children: dict[str, str]) -> str:
        """Push an index of `children` (platform text -> child digest) to `reference`; its digest."""
        descriptors = []
        for platform, digest in children.items():
            os_arch, _, version = platform.partition(" ")
            os_name, _, arch = os_arch.partition("/")
            described: dict[str, Any] = {"os": os_name, "architecture": arch}
            if version:
                described["os.version"] = version
            descriptors.append({"mediaType": IMAGE, "digest": digest, "size": 1, "platform": described})
        found = manifest({"mediaType": INDEX, "manifests": descriptors}, INDEX)
        self.manifests[found.digest] = found
        self.tags[reference] = found.digest
        return found.digest

    def resolve_digest(self, ref: ImageRef) -> str | None:
        self.heads.append(str(ref))
        return self.tags.get(f"{ref.repository}:{ref.tag}")

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest:
        return self.manifests[digest]

    def image_config(self, repository: Repository, found: Manifest) -> dict[str, Any]:
        return {"os": "linux", "architecture": "amd64"}
