"""The Reader protocol an ecosystem implements, and what readers find: packages, the distribution."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from packageurl import PackageURL


class UnreadableFile(ValueError):
    """A file a reader asked for is not in the format it reads; the message says where and why."""


@dataclass(frozen=True)
class Distro:
    """The image's os-release ID and VERSION_ID ("" when the image has no os-release)."""

    id: str = ""
    version_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class Package:
    """One installed package, as its ecosystem's database records it."""

    name: str
    version: str
    purl: PackageURL
    path: str  # the file it was read from, without a leading /
    license: str = ""  # an SPDX id or expression, or a licence's name as the package states it
    properties: tuple[tuple[str, str], ...] = field(default=())  # (name, value): what has no CycloneDX field


class Reader(Protocol):
    """An ecosystem's package database: which image files it wants, and the packages in one of them.

    `wants` sees each file path of every layer (relative, no leading /), so it must be cheap; only the files
    it accepts are kept, the last layer's copy of each. `read` raises UnreadableFile (or another ValueError,
    such as UnicodeDecodeError) for a file it cannot read; that file is then skipped with a warning."""

    ecosystem: str

    def wants(self, path: str) -> bool: ...

    def read(self, path: str, data: bytes, distro: Distro) -> list[Package]: ...


OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")  # etc/ wins; it is often a symlink to the other


def parse_os_release(data: bytes) -> Distro:
    """os-release(5): shell-style KEY=value lines, values optionally quoted."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(raw)
        except ValueError:  # an unbalanced quote: take the text as it stands
            words = [raw.strip("\"'")]
        values[key] = " ".join(words)
    return Distro(values.get("ID", "").lower(), values.get("VERSION_ID", ""), values.get("PRETTY_NAME", ""))


def distro_of(files: Mapping[str, bytes]) -> Distro:
    for path in OS_RELEASE_PATHS:
        if path in files:
            return parse_os_release(files[path])
    return Distro()
