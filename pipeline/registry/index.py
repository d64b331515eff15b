"""Image indexes: one manifest listing an image's per-platform manifests, as OCI image-spec's
image-index.md defines it (a Docker manifest list where a registry refuses the OCI form).

    index = push_index(registry, repository, [amd64_digest, arm64_digest])
    index_platforms(registry, repository, index.digest)  # [(amd64_digest, "linux/amd64"), ...]

The index is assembled from what the registry holds (each child's manifest and config), not from
what a build said it made, so it describes the bytes a puller gets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline.common.http import httpx
from pipeline.errors import PipelineError, RegistryError
from pipeline.registry.client import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    RegistryClient,
    image_descriptors,
    is_attestation_manifest,
)

__all__ = ["image_descriptors", "is_attestation_manifest"]  # where the index's readers look for them
from pipeline.registry.platforms import check_platform, normalize
from pipeline.registry.protocol import Registry
from pipeline.registry.reference import Repository
from pipeline.registry.session import registry_message

# Error codes (OCI distribution spec) with which a registry says it does not take this kind of manifest,
# as opposed to "this manifest is broken" (MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID, ...), which a Docker
# manifest list would not fix.
_REFUSED_KIND = {"MANIFEST_INVALID", "UNSUPPORTED", "UNSUPPORTED_MEDIA_TYPE"}


class PlatformClash(PipelineError):
    """Two manifests of one index have the same platform: a puller could not tell them apart."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str) -> Platform:
        """The platform an image config declares (`os`, `architecture`, `variant`, `os.version`, `os.features`)."""
        os_name, architecture = config.get("os"), config.get("architecture")
        if not isinstance(os_name, str) or not os_name or not isinstance(architecture, str) or not architecture:
            raise RegistryError(f"{where}: its image config names no os and architecture, so it has no platform")
        return cls(
            os=os_name,
            architecture=architecture,
            variant=str(config.get("variant") or ""),
            os_version=str(config.get("os.version") or ""),
            os_features=tuple(str(f) for f in config.get("os.features") or ()),
        )

    @classmethod
    def from_descriptor(cls, platform: Mapping[str, Any]) -> Platform:
        return cls(
            os=str(platform.get("os") or "unknown"),
            architecture=str(platform.get("architecture") or "unknown"),
            variant=str(platform.get("variant") or ""),
            os_version=str(platform.get("os.version") or ""),
            os_features=tuple(str(f) for f in platform.get("os.features") or ()),
        )

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a puller matches on, normalized as containerd does (arm64 without a variant is arm64/v8)."""
        normal = normalize(self.os, self.architecture, self.variant)
        return (normal.os, normal.architecture, normal.variant, self.os_version)

    def text(self) -> str:
        """`linux/arm64/v8`, `windows/amd64 10.0.17763`."""
        name = "/".join(p for p in (self.os, self.architecture, self.variant) if p)
        return f"{name} {self.os_version}" if self.os_version else name

    def descriptor_field(self) -> dict[str, Any]:
        """The descriptor's `platform` object; optional properties only where the config has them."""
        field: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            field["variant"] = self.variant
        if self.os_version:
            field["os.version"] = self.os_version
        if self.os_features:
            field["os.features"] = list(self.os_features)
        return field


@dataclass(frozen=True)
class IndexEntry:
    """One child of an index: its manifest's descriptor and platform."""

    digest: str
    media_type: str
    size: int
    platform: Platform


def index_body(entries: Sequence[IndexEntry], media_type: str = OCI_INDEX) -> bytes:
    """The index as compact JSON with sorted keys, children in the order given: the same children give
    the same bytes, so the same digest, on every run and machine (pushing it again changes nothing)."""
    seen: dict[tuple[str, str, str, str], IndexEntry] = {}
    for entry in entries:
        other = seen.setdefault(entry.platform.key, entry)
        if other is not entry:
            raise PlatformClash(
                f"{other.digest} and {entry.digest} are both {entry.platform.text()}: an index cannot hold two "
                "images of one platform; give each variant its own platform (or os_version)"
            )
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "platform": e.platform.descriptor_field(),
            }
            for e in entries
        ],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _media_type(manifest: Manifest) -> str:
    """A manifest's media type; an OCI manifest read from the content cache may not carry one in its body."""
    if manifest.media_type:
        return manifest.media_type
    return str(manifest.json().get("mediaType") or OCI_MANIFEST)


def index_entry(registry: RegistryClient, repository: Repository, digest: str) -> IndexEntry:
    """The descriptor of `repository@digest` for an index, its platform read from the image config."""
    manifest = registry.manifest_by_digest(repository, digest)
    where = f"{repository}@{digest}"
    if manifest.is_index:
        raise RegistryError(f"{where} is itself an index: list its platform manifests instead")
    config_digest = str((manifest.json().get("config") or {}).get("digest") or "")
    if not config_digest:
        raise RegistryError(f"{where}: the manifest names no image config")
    config = json.loads(registry.get_blob(repository, config_digest))
    if not isinstance(config, dict):
        raise RegistryError(f"{where}: its image config is not a JSON object")
    return IndexEntry(digest, _media_type(manifest), len(manifest.body), Platform.from_config(config, where))


def _refuses_kind(response: httpx.Response) -> bool:
    """True where the registry answered that it does not take this kind of manifest (415, or 400 with one of
    the codes above), not that the manifest is broken or that we may not write."""
    if response.status_code == 415:
        return True
    if response.status_code != 400:
        return False
    try:
        errors = response.json().get("errors") or []
        codes = {str(e.get("code", "")) for e in errors if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return False
    return bool(codes & _REFUSED_KIND)


def _as_manifest(body: bytes, media_type: str) -> Manifest:
    return Manifest(media_type=media_type, digest="sha256:" + hashlib.sha256(body).hexdigest(), body=body)


def push_index(registry: RegistryClient, repository: Repository, children: Sequence[str]) -> Manifest:
    """Assemble an index of `children` (manifest digests already in `repository`, in this order) and push
    it by digest. An OCI image index first; where the registry refuses that kind of manifest (415, or 400
    MANIFEST_INVALID/UNSUPPORTED, as registries without OCI support answer), the same children as a Docker
    manifest list. Any other refusal is an error: a list would be refused too."""
    if not children:
        raise RegistryError(f"{repository}: an index needs at least one image")
    # Each child costs two reads (manifest, config) unless cached: read them side by side, not in turn.
    with ThreadPoolExecutor(max_workers=min(8, len(children))) as pool:
        entries = list(pool.map(lambda digest: index_entry(registry, repository, digest), children))
    manifest = _as_manifest(index_body(entries, OCI_INDEX), OCI_INDEX)
    response = registry.send_manifest(repository, manifest.digest, manifest)
    if _refuses_kind(response):
        refused = registry_message(response)
        manifest = _as_manifest(index_body(entries, DOCKER_LIST), DOCKER_LIST)
        response = registry.send_manifest(repository, manifest.digest, manifest)
        if response.status_code >= 400:
            raise RegistryError(
                f"{repository}: the registry refused the image index ({refused}) and the Docker manifest list "
                f"({registry_message(response)})"
            )
    registry.session.raise_for(response, repository, f"writing image index {manifest.digest}")
    stored = response.headers.get("Docker-Content-Digest", manifest.digest)
    if stored != manifest.digest:
        raise RegistryError(f"{repository}: registry stored the index as {stored}, expected {manifest.digest}")
    registry.remember_written(repository, manifest)
    if registry.content is not None:
        registry.content.put(manifest.digest, manifest.body)
    return manifest


def platforms_in(manifest: Manifest) -> list[tuple[str, str]]:
    """(child digest, platform text) of each image an index lists (not its attestation manifests); [] for an
    image manifest."""
    if not manifest.is_index:
        return []
    return [
        (str(c["digest"]), Platform.from_descriptor(c.get("platform") or {}).text())
        for c in image_descriptors(manifest.json())
    ]


def index_platforms(registry: RegistryClient, repository: Repository, digest: str) -> list[tuple[str, str]]:
    """(child digest, platform text like `linux/arm64` or `windows/amd64 10.0.17763`) of each child of the
    index `repository@digest`, in its order; [] when the digest is a single image's manifest."""
    return platforms_in(registry.manifest_by_digest(repository, digest))


def children_for(descriptors: list[dict[str, Any]], platform: str, os_version: str | None = None) -> list[str]:
    """The digests of an index's image entries (`image_descriptors`) whose platform is `platform` (and,
    given, that Windows build), in the index's order."""
    return [
        str(d["digest"]) for d in descriptors if check_platform(d.get("platform") or {}, platform, os_version) is None
    ]


def child_for(registry: Registry, repository: Repository, digest: str, platform: str, os_version: str | None) -> str:
    """What a build for `platform` (and Windows build) takes from `repository@digest`: the digest itself
    when it is one image, else the index's child of that platform. An index without one is an error."""
    manifest = registry.manifest_by_digest(repository, digest)
    if not manifest.is_index:
        return digest
    found = children_for(image_descriptors(manifest.json()), platform, os_version)
    if found:
        return found[0]
    wanted = f"{platform} {os_version}" if os_version else platform
    listed = ", ".join(text for _, text in platforms_in(manifest))
    raise RegistryError(f"{repository}@{digest} has no {wanted} image to build on (it has {listed})")
