"""A run's SBOMs of images on one base download the base's layers once, and say what they would say
without sharing them (the bench's images: attest_bench.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from pipeline.registry.client import OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.reference import Repository, parse_repository
from pipeline.sbom import LayerCache, sbom_document
from tests.integration.conftest import Services
from tests.integration.test_index import RecordingTransport

pytestmark = pytest.mark.integration
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def gzip_layer(files: dict[str, str]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(raw.getvalue(), mtime=0), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


def push_image(registry: RegistryClient, repository: Repository, layers: list[tuple[bytes, str]]) -> str:
    descriptors = [
        {"mediaType": GZIP, "size": len(blob), "digest": registry.push_blob(repository, blob)} for blob, _ in layers
    ]
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}).encode()
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": len(config),
                "digest": registry.push_blob(repository, config),
            },
            "layers": descriptors,
        }
    ).encode()
    manifest = Manifest(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body)
    registry.put_manifest(repository, "latest", manifest)
    return manifest.digest


def test_images_on_one_base_read_its_layers_once_and_list_the_same_packages(services: Services, namespace: str) -> None:
    base = gzip_layer({"etc/os-release": "ID=debian\nVERSION_ID=12\n", "bin/tool": "x" * 5000})
    status = "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nVersion: {}\n"
    repositories = [parse_repository(f"{services.plain_registry}/{namespace}/app{i}") for i in range(3)]
    tops = [gzip_layer({"var/lib/dpkg/status": status.format(f"1.{i}")}) for i in range(3)]
    with RegistryClient(lambda _: None) as setup:
        digests = [push_image(setup, repo, [base, top]) for repo, top in zip(repositories, tops, strict=True)]
    base_blob = "sha256:" + hashlib.sha256(base[0]).hexdigest()

    transport = RecordingTransport()
    cache = LayerCache()
    with RegistryClient(lambda _: None, transport=transport) as registry:
        shared = [sbom_document(registry, r, d, layers=cache) for r, d in zip(repositories, digests, strict=True)]
    with RegistryClient(lambda _: None) as registry:
        alone = [sbom_document(registry, r, d) for r, d in zip(repositories, digests, strict=True)]

    assert shared == alone
    versions = [{c["name"]: c.get("version") for c in document["components"]}["libfoo1"] for document in shared]
    assert versions == ["1.0", "1.1", "1.2"]
    base_reads = [path for method, path in transport.requests if method == "GET" and path.endswith(base_blob)]
    assert len(base_reads) == 1, transport.requests
