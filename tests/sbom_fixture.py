"""The files of the SBOM fixture image (unit and integration tests): two package databases, os-release and
three Python distributions, one of which an upper layer deletes."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.sbom import Layer, bom_document, image_files, read_packages
from pipeline.sbom.readers import READERS, wanted_by

DPKG_STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: oldtool
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Description: removed, only its configuration files are left

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Description: time zone and daylight-saving time data
"""

APK_INSTALLED = """\
C:Q1mTKGRk0bfEB1Ns0uAh/4XJj4XHk=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
o:musl
L:MIT
F:lib
R:ld-musl-x86_64.so.1

C:Q1Z8wHmNq3WNr2DT/0pXHwO0SDlRs=
P:zlib
V:1.3.1-r0
A:x86_64
o:zlib
L:Zlib
"""

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'

SITE = "usr/lib/python3/dist-packages"


def metadata(name: str, version: str, license_line: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{license_line}\nSummary: s\n\nLong text.\n"


# The lower layer's files, by path in the image (no leading /).
LOWER = {
    "var/lib/dpkg/status": DPKG_STATUS,
    "lib/apk/db/installed": APK_INSTALLED,
    "etc/os-release": OS_RELEASE,
    f"{SITE}/Requests-2.31.0.dist-info/METADATA": metadata("Requests", "2.31.0", "License: Apache-2.0"),
    f"{SITE}/ruamel.yaml-0.18.5.dist-info/METADATA": metadata("ruamel.yaml", "0.18.5", "License-Expression: MIT"),
    f"{SITE}/Deleted_Pkg-9.9.dist-info/METADATA": metadata("Deleted_Pkg", "9.9", "License: UNKNOWN"),
}
DELETED_DIST_INFO = f"{SITE}/Deleted_Pkg-9.9.dist-info"  # the upper layer's whiteout removes this directory

# What the SBOM must list (purl -> version), and the purls it must not.
EXPECTED = {
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64": "2.36-9+deb12u4",
    "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all": "2024a-0+deb12u1",
    "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64": "1.2.4-r2",
    "pkg:apk/alpine/zlib@1.3.1-r0?arch=x86_64": "1.3.1-r0",
    "pkg:pypi/requests@2.31.0": "2.31.0",
    "pkg:pypi/ruamel-yaml@0.18.5": "0.18.5",
}
ABSENT = ("pkg:deb/debian/oldtool@1.0-1?arch=amd64", "pkg:pypi/deleted-pkg@9.9")


GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"
DIGEST = "sha256:" + "d" * 64
BASE_DIGEST = "sha256:" + "b" * 64

Entry = str | bytes | tuple[str, str]  # file text or bytes; ("dir", ""), ("symlink", to) or ("hardlink", to)


def layer(entries: Mapping[str, Entry], media_type: str = GZIP) -> Layer:
    """A layer blob as a registry would serve it: a tar (gzipped unless `media_type` says plain tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, entry in entries.items():
            info = tarfile.TarInfo(name)
            if isinstance(entry, tuple):
                kind, info.linkname = entry
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
                tar.addfile(info)
            else:
                data = entry.encode() if isinstance(entry, str) else entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue(), mtime=0) if media_type.endswith("gzip") else raw.getvalue()
    return Layer(media_type, "sha256:" + "0" * 64, io.BytesIO(blob))


def fixture_layers() -> list[Layer]:
    """The fixture image: the files in a gzip layer; a plain-tar layer above whites out one dist-info."""
    parent, _, name = DELETED_DIST_INFO.rpartition("/")
    return [layer({f"./{path}": text for path, text in LOWER.items()}), layer({f"{parent}/.wh.{name}": ""}, TAR)]


def fixture_document(timestamp: datetime | None = None) -> dict[str, Any]:
    files = image_files(fixture_layers(), wanted_by(READERS))
    return bom_document(
        "127.0.0.1:5000/ns/app", DIGEST, read_packages(files), [("127.0.0.1:5000/ns/base", BASE_DIGEST)], timestamp
    )
