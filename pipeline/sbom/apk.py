"""Alpine: the packages in apk's installed database."""

from __future__ import annotations

from packageurl import PackageURL

from pipeline.sbom.reader import Distro, Package, UnreadableFile

INSTALLED = "lib/apk/db/installed"


class ApkReader:
    ecosystem = "apk"

    def wants(self, path: str) -> bool:
        return path == INSTALLED

    def read(self, path: str, data: bytes, distro: Distro) -> list[Package]:
        # One `X:value` line per field, packages separated by a blank line; a package repeats F:/R:
        # lines for its files, so only the single-valued fields are read.
        packages = []
        fields: dict[str, str] = {}
        for number, line in enumerate([*data.decode("utf-8").splitlines(), ""], start=1):
            if not line.strip():
                if fields:
                    packages.append(self._package(fields, path))
                fields = {}
                continue
            if len(line) < 2 or line[1] != ":":
                raise UnreadableFile(f"line {number}: not an `X:value` line")
            fields.setdefault(line[0], line[2:])
        return packages

    @staticmethod
    def _package(fields: dict[str, str], path: str) -> Package:
        name, version, arch = fields.get("P", ""), fields.get("V", ""), fields.get("A", "")
        if not name or not version:
            raise UnreadableFile(f"a package without P: or V: ({name or 'no name'})")
        purl = PackageURL("apk", "alpine", name, version, {"arch": arch} if arch else None)
        origin = fields.get("o", "")
        properties = (("pipeline:sbom:source-package", origin),) if origin else ()
        return Package(name, version, purl, path, license=fields.get("L", ""), properties=properties)
