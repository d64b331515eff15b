"""The SBOM of an image built and pushed by `pipeline run`, read back from the registry's layers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pipeline.common.reporting import Forward
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.sbom import sbom_document
from tests.helpers import init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services
from tests.sbom_fixture import ABSENT, DELETED_DIST_INFO, EXPECTED, LOWER

pytestmark = pytest.mark.integration

# The packaged files come in with COPY; the app's RUN deletes one dist-info, so its layer holds a whiteout.
BASE = """\
FROM scratch
COPY busybox /bin/busybox
COPY rootfs/ /
"""
APP = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN ["/bin/busybox", "rm", "-r", "/{DELETED_DIST_INFO}"]
"""


def test_sbom_of_a_pushed_image_lists_its_packages_and_base_but_not_what_a_layer_deleted(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop_project(
        tmp_path,
        f"{services.plain_registry}/{namespace}",
        sign=False,
        images=("base", "app"),
        base_dockerfile=BASE,
        app_dockerfile=APP,
    )
    for path, text in LOWER.items():
        (tmp_path / "images/base/rootfs" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "images/base/rootfs" / path).write_text(text)
    init_git(tmp_path)
    result = run_cli(["run", "--json"], tmp_path)
    assert result.code == 0, result.output
    digests = {image["name"]: str(image["digest"]) for image in json.loads(result.stdout)["images"]}
    base_repo, app_repo = (f"{services.plain_registry}/{namespace}/{name}" for name in ("base", "app"))
    # The deletion really is a whiteout in the registry's layers, not a file that never got there.
    assert f"{DELETED_DIST_INFO}/METADATA" in plain_peek.files(f"{namespace}/base", digests["base"])

    started = time.perf_counter()
    with RegistryClient(lambda _: None) as registry:
        document = sbom_document(
            registry,
            parse_repository(app_repo),
            digests["app"],
            [(base_repo, digests["base"])],
            reporter=Forward(pytest.fail),
        )
    elapsed = time.perf_counter() - started
    print(f"sbom_document of {app_repo}@{digests['app']}: {elapsed:.3f}s")

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
    assert document["metadata"]["component"]["name"] == app_repo
    assert document["metadata"]["component"]["version"] == digests["app"]
    found = {str(component.get("purl", component["bom-ref"])): component for component in document["components"]}
    for purl, version in EXPECTED.items():
        assert found[purl]["version"] == version, purl
    for purl in ABSENT:
        assert purl not in found
    base = found[f"pkg:oci/base@{digests['base']}?repository_url={base_repo}"]
    assert (base["type"], base["name"], base["version"]) == ("container", base_repo, digests["base"])

    # The base's own SBOM still lists the package its dependant deleted.
    with RegistryClient(lambda _: None) as registry:
        base_document = sbom_document(registry, parse_repository(base_repo), digests["base"])
    assert "pkg:pypi/deleted-pkg@9.9" in {component.get("purl") for component in base_document["components"]}
