"""The CycloneDX 1.6 document of an image: its packages, its base images, the image itself as the subject."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from pipeline import __version__
from pipeline.common.reporting import SILENT, Reporter
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.sbom.layers import LayerCache, registry_files
from pipeline.sbom.reader import Distro, Package, Reader
from pipeline.sbom.readers import READERS, Contents, read_packages, wanted_by

SPEC_VERSION = "1.6"
# serialNumber is a uuid5 of the image in this namespace: the same image gives the same document.
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/pipeline/sbom")
LOCATION = "pipeline:sbom:location"  # the file a package was read from (Syft writes syft:location:*)
SKIPPED = "pipeline:sbom:skipped"  # a file a reader could not read, with why


def image_purl(repository: str, digest: str) -> PackageURL:
    """purl-spec's oci type: the last path component as the name, the whole repository as repository_url."""
    return PackageURL("oci", None, repository.rsplit("/", 1)[-1].lower(), digest, {"repository_url": repository})


def container(repository: str, digest: str) -> Component:
    purl = image_purl(repository, digest)
    return Component(type=ComponentType.CONTAINER, name=repository, version=digest, purl=purl, bom_ref=purl.to_string())


def package_components(packages: Sequence[Package]) -> list[Component]:
    """One component per purl; a package found in several files (two site-packages) names each of them."""
    licenses = LicenseFactory()
    by_purl: dict[str, Component] = {}
    for package in packages:
        ref = package.purl.to_string()
        location = Property(name=LOCATION, value="/" + package.path)
        if ref in by_purl:
            by_purl[ref].properties.add(location)
            continue
        by_purl[ref] = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            purl=package.purl,
            bom_ref=ref,
            licenses=[licenses.make_from_string(package.license)] if package.license else None,
            properties=[location, *(Property(name=name, value=value) for name, value in package.properties)],
        )
    return list(by_purl.values())


def operating_system(distro: Distro) -> list[Component]:
    if not distro.id:
        return []
    ref = f"os:{distro.id}@{distro.version_id}"
    return [
        Component(
            type=ComponentType.OPERATING_SYSTEM,
            name=distro.id,
            version=distro.version_id or None,
            description=distro.name or None,
            bom_ref=ref,
        )
    ]


def bom_document(
    repository: str,
    digest: str,
    contents: Contents,
    bases: Sequence[tuple[str, str]] = (),
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The CycloneDX JSON (as a dict) of image `repository@digest` holding `contents`, built on `bases`
    ((repository, digest) pairs). The same arguments give the same document: components are sorted and the
    serialNumber derives from the image; `timestamp` is left out when None."""
    bom = Bom(serial_number=uuid.uuid5(SERIAL_NAMESPACE, f"{repository}@{digest}"))
    if timestamp is not None:
        bom.metadata.timestamp = timestamp
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="pipeline", version=__version__))
    subject = container(repository, digest)
    bom.metadata.component = subject
    bom.metadata.properties.update(Property(name=SKIPPED, value=reason) for reason in contents.skipped)
    parts = [
        *(container(base, base_digest) for base, base_digest in bases),
        *operating_system(contents.distro),
        *package_components(contents.packages),
    ]
    bom.components.update(parts)
    bom.register_dependency(subject, parts)  # what the image contains: without it the graph is incomplete
    for part in parts:
        bom.register_dependency(part, [])  # nothing is known of the packages' own dependencies
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    if timestamp is None:  # the library stamps the time of the call, which is no function of the image
        document["metadata"].pop("timestamp", None)
    return document


def sbom_document(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    bases: Sequence[tuple[str, str]] = (),
    *,
    timestamp: datetime | None = None,
    readers: Sequence[Reader] = READERS,
    reporter: Reporter = SILENT,
    layers: LayerCache | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON (a dict) of the image manifest `digest` as stored in `repository`: the
    packages `readers` find in its layers, `bases` ((repository, digest) pairs) as container components.
    Files a reader cannot read are skipped, listed in metadata.properties and passed to `reporter.warn`. `layers`
    keeps the layers read for the next image (a run's images share their bases' layers)."""
    files = registry_files(registry, repository, digest, wanted_by(readers), layers, tuple(readers))
    contents = read_packages(files, readers)
    for reason in contents.skipped:
        reporter.warn(f"{repository}@{digest}: {reason}")
    return bom_document(str(repository), digest, contents, bases, timestamp)
