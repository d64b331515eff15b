"""Debian and Ubuntu: the packages dpkg's status database marks installed."""

from __future__ import annotations

from packageurl import PackageURL

from pipeline.sbom.reader import Distro, Package, UnreadableFile

STATUS = "var/lib/dpkg/status"
# Distroless images have no dpkg but one status file per package here (plus *.md5sums beside them).
STATUS_DIR = "var/lib/dpkg/status.d/"


def parse_control(text: str, path: str) -> list[dict[str, str]]:
    """deb822 paragraphs (blank-line separated `Field: value` lines; continuation lines start with a space
    or tab) as dicts; field names as written."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, ""
        elif line[0] in " \t":
            if not last:
                raise UnreadableFile(f"line {number}: a continuation line with no field before it")
            current[last] += "\n" + line.strip()
        else:
            name, sep, value = line.partition(":")
            if not sep or not name or " " in name:
                raise UnreadableFile(f"line {number}: not a `Field: value` line")
            current[name], last = value.strip(), name
    if current:
        paragraphs.append(current)
    return paragraphs


class DpkgReader:
    ecosystem = "deb"

    def wants(self, path: str) -> bool:
        return path == STATUS or (path.startswith(STATUS_DIR) and not path.endswith(".md5sums"))

    def read(self, path: str, data: bytes, distro: Distro) -> list[Package]:
        # Ubuntu's packages are named in its own purl namespace; derivatives without os-release count as Debian.
        namespace = distro.id or "debian"
        packages = []
        for fields in parse_control(data.decode("utf-8"), path):
            # The third word is the state: "install ok installed" and "hold ok installed" are on disk;
            # "deinstall ok config-files", "purge ok not-installed", half-installed ones are not.
            status = fields.get("Status", "install ok installed").split()  # status.d/ files have none
            if len(status) != 3 or status[2] != "installed":
                continue
            name, version = fields.get("Package", ""), fields.get("Version", "")
            if not name or not version:
                raise UnreadableFile(f"an installed package without Package or Version ({name or 'no name'})")
            arch = fields.get("Architecture", "")
            purl = PackageURL("deb", namespace, name, version, {"arch": arch} if arch else None)
            source = fields.get("Source", "")
            properties = (("pipeline:sbom:source-package", source),) if source else ()
            packages.append(Package(name, version, purl, path, properties=properties))
        return packages
