"""The SBOM from layer streams built here (no registry): whiteouts, the readers, the CycloneDX document."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pipeline.errors import PipelineError
from pipeline.sbom import Layer, SbomError, bom_document, image_files, read_packages
from pipeline.sbom.document import SERIAL_NAMESPACE
from pipeline.sbom.readers import READERS, wanted_by
from tests.sbom_fixture import (
    ABSENT,
    BASE_DIGEST,
    DELETED_DIST_INFO,
    DIGEST,
    EXPECTED,
    GZIP,
    LOWER,
    TAR,
    fixture_document,
    fixture_layers,
    layer,
)


def everything(_path: str) -> bool:
    return True


def components(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = document["components"]
    assert isinstance(found, list)
    return {str(component.get("purl", component["bom-ref"])): component for component in found}


def test_a_whiteout_deletes_a_lower_layers_directory_and_only_wanted_files_are_kept() -> None:
    files = image_files(fixture_layers(), wanted_by(READERS))
    deleted = f"{DELETED_DIST_INFO}/METADATA"
    assert set(files) == set(LOWER) - {deleted}
    assert files["var/lib/dpkg/status"] == LOWER["var/lib/dpkg/status"].encode()

    only_status = image_files(fixture_layers(), lambda path: path == "var/lib/dpkg/status")
    assert list(only_status) == ["var/lib/dpkg/status"]


def test_upper_layers_replace_hide_and_keep_what_the_oci_layer_spec_says() -> None:
    lower = layer(
        {
            "opaque/old": "gone",
            "merged/old": "kept",
            "replaced": "v1",
            "linked": "a file, then a symlink",
            "dir-then-file/inner": "hidden by a file of the same name",
            "wh-same-layer": "a whiteout hides lower layers only",
        }
    )
    upper = layer(
        {
            "opaque/.wh..wh..opq": "",
            "opaque/new": "new",
            "merged/new": "new",
            "replaced": "v2",
            "linked": ("symlink", "replaced"),
            "dir-then-file": "a file now",
            "same/x": "x",
            "same/.wh.x": "",  # in one layer: hides only a lower x, so this layer's x stays
            "hard": ("hardlink", "same/x"),
        },
        TAR,
    )
    assert image_files([lower, upper], everything) == {
        "opaque/new": b"new",
        "merged/old": b"kept",
        "merged/new": b"new",
        "replaced": b"v2",
        "dir-then-file": b"a file now",
        "wh-same-layer": b"a whiteout hides lower layers only",
        "same/x": b"x",
        "hard": b"x",
    }


def test_layers_that_cannot_be_read_are_refused_naming_the_layer_and_media_type() -> None:
    zstd = Layer("application/vnd.oci.image.layer.v1.tar+zstd", DIGEST, io.BytesIO(b"\x28\xb5\x2f\xfd"))
    with pytest.raises(SbomError, match=r"layer sha256:d+ is application/vnd.oci.image.layer.v1.tar\+zstd: zstd"):
        image_files([zstd], everything)
    broken = Layer(GZIP, DIGEST, io.BytesIO(b"not gzip at all"))
    with pytest.raises(PipelineError, match=r"layer sha256:d+ \(application/.*\+gzip\) is not a readable tar"):
        image_files([broken], everything)
    other = Layer("application/vnd.in-toto+json", DIGEST, io.BytesIO(b"{}"))
    with pytest.raises(SbomError, match="media type 'application/vnd.in-toto\\+json', not a tar layer"):
        image_files([other], everything)


def test_readers_find_installed_packages_with_their_purls() -> None:
    files = {path: text.encode() for path, text in LOWER.items()}
    contents = read_packages(files)
    assert contents.skipped == ()
    assert contents.distro.id == "debian" and contents.distro.version_id == "12"
    found = {package.purl.to_string(): package for package in contents.packages}
    assert set(found) == set(EXPECTED) | {"pkg:pypi/deleted-pkg@9.9"}  # nothing deleted it here
    assert {purl: package.version for purl, package in found.items() if purl in EXPECTED} == EXPECTED
    assert found["pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"].properties == (
        ("pipeline:sbom:source-package", "glibc"),
    )
    assert found["pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"].license == "MIT"
    assert found["pkg:pypi/ruamel-yaml@0.18.5"].name == "ruamel.yaml"
    assert found["pkg:pypi/ruamel-yaml@0.18.5"].license == "MIT"
    assert found["pkg:pypi/deleted-pkg@9.9"].license == ""  # UNKNOWN names no licence

    ubuntu = dict(files, **{"etc/os-release": b"ID=ubuntu\nVERSION_ID=24.04\n"})
    purls = {package.purl.to_string() for package in read_packages(ubuntu).packages}
    assert "pkg:deb/ubuntu/libc6@2.36-9%2Bdeb12u4?arch=amd64" in purls


def test_a_database_a_reader_cannot_read_is_skipped_with_a_reason_and_the_rest_is_read() -> None:
    files = {path: text.encode() for path, text in LOWER.items()}
    files["var/lib/dpkg/status"] = b"\x89PNG\r\n\x1a\n\x00\x00garbage"
    files["lib/apk/db/installed"] = b"this is not\nan apk database\n"
    files["usr/lib/python3/dist-packages/broken-1.dist-info/METADATA"] = b"Summary: no name or version\n"
    contents = read_packages(files)
    assert contents.skipped == (
        "/lib/apk/db/installed: not a apk database (line 1: not an `X:value` line); skipped",
        "/usr/lib/python3/dist-packages/broken-1.dist-info/METADATA: not a pypi database "
        "(no Name or Version header); skipped",
        "/var/lib/dpkg/status: not a deb database ('utf-8' codec can't decode byte 0x89 in position 0: "
        "invalid start byte); skipped",
    )
    assert {package.purl.type for package in contents.packages} == {"pypi"}
    document = bom_document("r/app", DIGEST, contents)
    skipped = [p["value"] for p in document["metadata"]["properties"] if p["name"] == "pipeline:sbom:skipped"]
    assert skipped == list(contents.skipped)


def test_the_document_is_valid_cyclonedx_listing_packages_bases_and_the_image() -> None:
    document = fixture_document(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    text = json.dumps(document)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["timestamp"] == "2026-01-02T03:04:05+00:00"
    assert document["metadata"]["component"] == {
        "bom-ref": f"pkg:oci/app@{DIGEST}?repository_url=127.0.0.1:5000/ns/app",
        "name": "127.0.0.1:5000/ns/app",
        "purl": f"pkg:oci/app@{DIGEST}?repository_url=127.0.0.1:5000/ns/app",
        "type": "container",
        "version": DIGEST,
    }
    found = components(document)
    for purl, version in EXPECTED.items():
        assert found[purl]["version"] == version and found[purl]["type"] == "library", purl
    for purl in ABSENT:
        assert purl not in found
    base = found[f"pkg:oci/base@{BASE_DIGEST}?repository_url=127.0.0.1:5000/ns/base"]
    assert (base["type"], base["name"], base["version"]) == ("container", "127.0.0.1:5000/ns/base", BASE_DIGEST)
    assert found["os:debian@12"]["type"] == "operating-system"
    assert found["pkg:pypi/ruamel-yaml@0.18.5"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert found["pkg:pypi/requests@2.31.0"]["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert {"name": "pipeline:sbom:location", "value": "/var/lib/dpkg/status"} in found[
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"
    ]["properties"]


def test_the_same_image_gives_the_same_bytes_in_another_process() -> None:
    # Another process hashes strings with another seed: set and dict orders there differ from here.
    script = "import json; from tests.sbom_fixture import fixture_document; print(json.dumps(fixture_document()))"
    there = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": "12345"}, capture_output=True, text=True
    )
    assert there.returncode == 0, there.stderr
    here = fixture_document()
    assert there.stdout.strip() == json.dumps(here)
    assert "timestamp" not in here["metadata"]
    expected_serial = uuid.uuid5(SERIAL_NAMESPACE, f"127.0.0.1:5000/ns/app@{DIGEST}")
    assert here["serialNumber"] == f"urn:uuid:{expected_serial}"
