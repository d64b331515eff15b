"""Python: distributions installed with a `*.dist-info/METADATA` file (pip, uv, poetry, wheels unpacked)."""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser

from packageurl import PackageURL

from pipeline.sbom.reader import Distro, Package, UnreadableFile

# A licence given as free text (the whole LICENSE file, as some packages do) makes no useful name.
LICENSE_NAME_LIMIT = 100


def normalize(name: str) -> str:
    """The PEP 503 name the purl spec asks for: lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


class PypiReader:
    ecosystem = "pypi"

    def wants(self, path: str) -> bool:
        return path.endswith(".dist-info/METADATA")

    def read(self, path: str, data: bytes, distro: Distro) -> list[Package]:
        # Core metadata is RFC 822 headers; the email parser is what importlib.metadata reads it with.
        headers = HeaderParser().parsestr(data.decode("utf-8"), headersonly=True)
        name, version = str(headers.get("Name", "")).strip(), str(headers.get("Version", "")).strip()
        if not name or not version:
            raise UnreadableFile("no Name or Version header")
        purl = PackageURL("pypi", None, normalize(name), version)
        return [Package(name, version, purl, path, license=license_of(headers))]


def license_of(headers: Message) -> str:
    expression = str(headers.get("License-Expression", "")).strip()  # PEP 639: an SPDX expression
    if expression:
        return expression
    text = str(headers.get("License", "")).strip()
    usable = text and text.upper() != "UNKNOWN" and "\n" not in text and len(text) <= LICENSE_NAME_LIMIT
    return text if usable else ""
