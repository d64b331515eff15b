"""The readers an SBOM uses (add an ecosystem here), and the packages they find in an image's files."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.sbom.apk import ApkReader
from pipeline.sbom.dpkg import DpkgReader
from pipeline.sbom.pypi import PypiReader
from pipeline.sbom.reader import OS_RELEASE_PATHS, Distro, Package, Reader, distro_of

READERS: tuple[Reader, ...] = (DpkgReader(), ApkReader(), PypiReader())


def wanted_by(readers: Sequence[Reader]) -> Callable[[str], bool]:
    """The files to keep from the layers: every reader's, and os-release (for the distribution)."""
    return lambda path: path in OS_RELEASE_PATHS or any(reader.wants(path) for reader in readers)


@dataclass(frozen=True)
class Contents:
    """What the readers found: packages sorted by purl and path, and the files they skipped (with why)."""

    distro: Distro
    packages: tuple[Package, ...]
    skipped: tuple[str, ...]


def read_packages(files: Mapping[str, bytes], readers: Sequence[Reader] = READERS) -> Contents:
    """Each reader on each file it wants; a file a reader cannot read is skipped and named in `skipped`
    (an SBOM missing one broken database says more than no SBOM)."""
    distro = distro_of(files)
    packages: list[Package] = []
    skipped: list[str] = []
    for path in sorted(files):
        for reader in readers:
            if not reader.wants(path):
                continue
            try:
                packages.extend(reader.read(path, files[path], distro))
            except ValueError as exc:  # UnreadableFile, UnicodeDecodeError: the file, not our code
                skipped.append(f"/{path}: not a {reader.ecosystem} database ({exc}); skipped")
    packages.sort(key=lambda package: (package.purl.to_string(), package.path))
    return Contents(distro, tuple(packages), tuple(skipped))
