"""Which tags `pipeline tags` keeps to itself unless --all: the input cache's, the attached artefacts' and
the variants' build tags (part of their index)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from pipeline.plan import REVISION_LABEL, VERSION_LABEL
from pipeline.registry.client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.release.tagview import is_internal, tag_view

HEX = "2e13c52d9c53ce56134adeae80e1a9b6e9cc65af8c96c1c4ec335f3f3559b93b"


@pytest.mark.parametrize(
    "tag",
    [
        "inputs-000c97a610a71816ba9d1924",
        f"sha256-{HEX}",
        f"sha256-{HEX}.sig",
        f"sha256-{HEX}.att",
        f"sha256-{HEX}.sbom",
    ],
)
def test_the_tools_own_tags_are_internal(tag: str) -> None:
    assert is_internal(tag)


@pytest.mark.parametrize(
    "tag", ["sha-8204a1ede5c7", "1.0.0", "latest", "latest-main", "sha256-short", f"sha256-{HEX}.txt"]
)
def test_user_tags_are_not(tag: str) -> None:
    assert not is_internal(tag)


class MemoryRegistry:
    """An OCI distribution registry in memory, served to the real RegistryClient through its transport seam."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.tags: dict[str, str] = {}

    def image(self, labels: dict[str, str], *tags: str) -> str:
        config = json.dumps({"config": {"Labels": labels}}).encode()
        self.blobs[_sha256(config)] = config
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha256(config)},
            "layers": [],
        }
        return self._put(OCI_MANIFEST, body, tags)

    def index(self, children: dict[str, str], *tags: str) -> str:
        manifests = []
        for platform, digest in children.items():
            os_name, architecture = platform.split("/")
            size = len(self.manifests[digest][1])
            entry = {"platform": {"os": os_name, "architecture": architecture}}
            manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size, **entry})
        return self._put(OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, tags)

    def _put(self, media_type: str, document: dict[str, Any], tags: tuple[str, ...]) -> str:
        body = json.dumps(document).encode()
        self.manifests[_sha256(body)] = (media_type, body)
        self.tags.update(dict.fromkeys(tags, _sha256(body)))
        return _sha256(body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"tags": sorted(self.tags)})
        kind, _, reference = path.rpartition("/")
        if kind.endswith("/blobs"):
            return httpx.Response(200, content=self.blobs[reference])
        digest = self.tags.get(reference, reference)
        if digest not in self.manifests:
            return httpx.Response(404)
        media_type, body = self.manifests[digest]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
        return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else body)


def _sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_a_variants_build_tag_is_part_of_its_index_not_a_row_of_its_own() -> None:
    """Each variant is pushed under `<build tag>-<variant>` before the index: before, `pipeline tags` listed
    every one as a `(not on any version)` row of its own."""
    memory = MemoryRegistry()
    labels = {VERSION_LABEL: "1.0.0", REVISION_LABEL: "0123456789ab" + "0" * 28}
    amd = memory.image(labels | {"p": "amd64"}, "sha-0123456789ab-linux-amd64")
    arm = memory.image(labels | {"p": "arm64"}, "sha-0123456789ab-linux-arm64")
    release = memory.index({"linux/amd64": amd, "linux/arm64": arm}, "sha-0123456789ab", "1.0.0", "latest")
    # An unversioned build of the next commit, and a dirty one of it, each with their variants.
    dev = {VERSION_LABEL: "dev"}
    parts = {p: memory.image(dev | {"p": p}, f"sha-fedcba987654-linux-{p}") for p in ("amd64", "arm64")}
    unversioned = memory.index({f"linux/{p}": d for p, d in parts.items()}, "sha-fedcba987654")
    dirty = memory.image(dev | {"dirty": "1"}, "sha-fedcba987654-dirty-linux-amd64")
    memory.index({"linux/amd64": dirty}, "sha-fedcba987654-dirty")
    # Not a variant's: the suffix names another image than a child of the index (a user's own tag).
    own = memory.image({"own": "1"}, "sha-0123456789ab-debug")
    registry = RegistryClient(
        lambda _: None, insecure_registries=["127.0.0.1:9"], transport=httpx.MockTransport(memory.handle)
    )
    repository = parse_repository("127.0.0.1:9/shop/app")

    view = tag_view(registry, repository)
    (row,) = view.versions
    assert (row.tags, row.digest, row.also) == (("1.0.0",), release, ("latest", "sha-0123456789ab"))
    assert row.platforms == ((amd, "linux/amd64"), (arm, "linux/arm64"))
    assert view.other == {
        "sha-0123456789ab-debug": own,
        "sha-fedcba987654": unversioned,
        "sha-fedcba987654-dirty": memory.tags["sha-fedcba987654-dirty"],
    }
    assert view.hidden == 5  # the variants' build tags

    everything = tag_view(registry, repository, everything=True)
    assert everything.hidden == 0
    assert {"sha-0123456789ab-linux-amd64", "sha-fedcba987654-dirty-linux-amd64"} <= set(everything.other)
