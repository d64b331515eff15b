"""What an image contains, read from its layers in the registry, as a CycloneDX SBOM.

`sbom_document(registry, repository, digest, bases)` reads the image manifest's layers (gzip or plain tar,
lowest first, OCI whiteouts applied), keeps only the files a reader asks for, and returns CycloneDX 1.6
JSON as a dict: the image as metadata.component, its base images and the packages found as components.
The readers (`readers.READERS`, one module each, the `reader.Reader` protocol) cover dpkg's status
database (Debian, Ubuntu), apk's installed database (Alpine) and Python's `*.dist-info/METADATA`.

    from datetime import UTC, datetime
    from pipeline.common.reporting import Forward
    from pipeline.sbom import sbom_document

    document = sbom_document(
        registry, repository, "sha256:…", bases=[("registry.example/base", "sha256:…")],
        timestamp=datetime.now(UTC), reporter=Forward(print),
    )
    json.dumps(document)  # the predicate of a https://cyclonedx.org/bom attestation

Everything but `timestamp` is a function of the image: the same image gives the same bytes.
`layers.image_files` and `document.bom_document` take layer streams and found packages, for tests and
for images that are not in a registry.
"""

from pipeline.sbom.document import bom_document, sbom_document
from pipeline.sbom.layers import Layer, LayerCache, SbomError, image_files
from pipeline.sbom.reader import Distro, Package, Reader, UnreadableFile
from pipeline.sbom.readers import READERS, Contents, read_packages

__all__ = [
    "READERS",
    "Contents",
    "Distro",
    "Layer",
    "LayerCache",
    "Package",
    "Reader",
    "SbomError",
    "UnreadableFile",
    "bom_document",
    "image_files",
    "read_packages",
    "sbom_document",
]
