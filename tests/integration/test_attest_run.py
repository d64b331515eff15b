"""`sign: {attest: [provenance, sbom]}`: every pushed digest of a run carries signed SLSA provenance and a
CycloneDX SBOM, checked against what was built (commit, base digests, build args, layers), against the
SLSA v1 and CycloneDX schemas, with trixie's cosign, and for secrets that must never be in them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packageurl import PackageURL

from tests.helpers import git, image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_attest import cosign_verify_attestation
from tests.integration.test_signing import ENV, consumer_project, push_unsigned

SCHEMAS = Path(__file__).parent.parent / "data" / "schemas"
SECRET = "hunter2-never-published"
REMOTE_TOKEN = "ghp_remote_token_never_published"
DPKG_STATUS = """\
Package: libfoo1
Status: install ok installed
Architecture: amd64
Version: 1.2.3-4
Source: foo

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1
"""
BASE = """\
FROM scratch
COPY busybox /bin/busybox
COPY status /var/lib/dpkg/status
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
"""
APP = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING
RUN --mount=type=secret,id=token echo "$GREETING" > /greeting && wc -c < /run/secrets/token > /token.length
"""


def attested_project(root: Path, registry: str) -> None:
    write_project(
        root,
        shop_config(
            registry,
            {
                "base": "",
                "app": image_entry(
                    "app",
                    'build_args: {BASE_IMAGE: "{{ images.base }}", GREETING: hello}',
                    "secrets: {token: {env: PIPELINE_TEST_TOKEN}}",
                ),
            },
            top=f"""\
            registries:
              {registry.split("/")[0]}: {{signature_storage: both}}
            sign: {{key: cosign.key, attest: [provenance, sbom]}}
            """,
        ),
        {"base": BASE, "app": APP},
        busybox=("base",),
    )
    (root / "images" / "base" / "status").write_text(DPKG_STATUS)
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0


def predicate(root: Path, ref: str, kind: str) -> dict[str, Any]:
    done = run_cli(["verify", ref, "--key", "cosign.pub", "--type", kind, "--json"], root)
    assert done.code == 0, done.output
    attestations = json.loads(done.stdout)["attestations"]
    assert len(attestations) == 1, attestations  # one statement, though stored in both forms
    found: dict[str, Any] = attestations[0]["predicate"]
    return found


@pytest.mark.engines  # issue 28: a build, its attestations and a promotion on each engine
def test_a_run_attests_provenance_and_sbom_of_what_it_built(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    attested_project(tmp_path, registry)
    (tmp_path / ".gitignore").write_text("cosign.key\n")
    sha = init_git(tmp_path)
    git(tmp_path, "remote", "add", "origin", f"https://ci:{REMOTE_TOKEN}@git.example.test/shop.git")
    result = run_cli(["run", "--json"], tmp_path, env={**ENV, "PIPELINE_TEST_TOKEN": SECRET})
    assert result.code == 0, result.output
    images = {i["name"]: i for i in json.loads(result.stdout)["images"]}
    base_ref, app_ref = images["base"]["reference"], images["app"]["reference"]
    base_digest = base_ref.split("@")[1]

    app = predicate(tmp_path, app_ref, "provenance")
    jsonschema.validate(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "x", "digest": {"sha256": "0" * 64}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": app,
        },
        json.loads((SCHEMAS / "slsa-provenance-v1.schema.json").read_text()),
    )
    definition = app["buildDefinition"]
    assert definition["externalParameters"]["pipeline"] == "shop"
    assert definition["externalParameters"]["image"] == "app"
    assert definition["externalParameters"]["buildArgs"] == {"BASE_IMAGE": base_ref, "GREETING": "hello"}
    assert definition["externalParameters"]["source"]["repository"] == "https://git.example.test/shop.git"
    dependencies = definition["resolvedDependencies"]
    assert {
        "uri": "git+https://git.example.test/shop.git@refs/heads/main",
        "digest": {"gitCommit": sha},
    } in dependencies
    dockerfile_sha = hashlib.sha256((tmp_path / "images" / "app" / "Dockerfile").read_bytes()).hexdigest()
    assert any(d.get("digest") == {"sha256": dockerfile_sha} for d in dependencies)
    assert any(d.get("digest") == {"sha256": base_digest.split(":")[1]} for d in dependencies), dependencies
    assert app["runDetails"]["builder"]["id"] == "https://github.com/pipeline-build/pipeline/builders/buildx"
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert app["runDetails"]["builder"]["version"]["engine"] == engine
    assert app["runDetails"]["metadata"]["startedOn"] <= app["runDetails"]["metadata"]["finishedOn"]
    assert definition["internalParameters"]["inputDigest"] == images["app"]["inputs"]

    sbom = predicate(tmp_path, base_ref, "sbom")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is None
    purls = {c.get("purl") for c in sbom["components"]}
    assert "pkg:deb/debian/libfoo1@1.2.3-4?arch=amd64" in purls
    assert not any("gone" in (p or "") for p in purls)
    app_sbom = predicate(tmp_path, app_ref, "sbom")  # the app inherits the base's packages, names its base
    assert "pkg:deb/debian/libfoo1@1.2.3-4?arch=amd64" in {c.get("purl") for c in app_sbom["components"]}
    base_repository = base_ref.split("@")[0]
    [base_component] = [c for c in app_sbom["components"] if c.get("version") == base_digest]
    purl = PackageURL.from_string(base_component["purl"])
    assert (base_component["name"], purl.type, purl.name, purl.version) == (base_repository, "oci", "base", base_digest)
    assert purl.qualifiers == {"repository_url": base_repository}

    # Nothing secret in any attestation: not the build secret, not the token in the remote's URL.
    for ref in (base_ref, app_ref):
        for kind in ("provenance", "sbom"):
            text = json.dumps(predicate(tmp_path, ref, kind))
            assert SECRET not in text and REMOTE_TOKEN not in text
    assert SECRET not in result.output and REMOTE_TOKEN not in result.output

    # trixie's cosign accepts both, for the app and its base.
    for ref in (base_ref, app_ref):
        assert cosign_verify_attestation(services, tmp_path / "cosign.pub", "slsaprovenance1", ref)["subject"]
        assert cosign_verify_attestation(services, tmp_path / "cosign.pub", "cyclonedx", ref)["subject"]

    # A second run reuses both images and keeps their attestations: no second layer of either type.
    again = run_cli(["run", "--json"], tmp_path, env={**ENV, "PIPELINE_TEST_TOKEN": SECRET})
    assert again.code == 0, again.output
    att = plain_peek.manifest(f"{namespace}/app", app_ref.split("@")[1].replace(":", "-") + ".att")
    assert att is not None and len(att[1]["layers"]) == 2


def test_the_trust_policy_requires_provenance_of_base_images_from_a_builder_and_source(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    upstream_dir, consumer = tmp_path / "upstream", tmp_path / "consumer"
    upstream_dir.mkdir()
    base = push_unsigned(upstream_dir, services, f"{namespace}/upstream")
    assert run_cli(["keys", "generate"], upstream_dir, env=ENV).code == 0
    assert run_cli(["sign", base, "--key", "cosign.key"], upstream_dir, env=ENV).code == 0
    consumer_project(
        consumer,
        f"{services.plain_registry}/{namespace}/consumer",
        f"{services.plain_registry}/{namespace}/upstream",
        (upstream_dir / "cosign.pub").read_bytes(),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo consumer > /consumer\n",
        base_image=base,
        rule="provenance:\n  builder_ids: ['https://builders.example.test/*']\n"
        "  sources: ['https://git.example.test/upstream/*']\nsbom: true",
    )

    destination = f"{services.plain_registry}/{namespace}/released"

    def attest(builder: str, source: str) -> None:
        provenance = {
            "buildDefinition": {
                "buildType": "https://example.test/t/v1",
                "externalParameters": {},
                "resolvedDependencies": [{"uri": f"git+{source}@refs/heads/main", "digest": {"gitCommit": "a" * 40}}],
            },
            "runDetails": {"builder": {"id": builder}},
        }
        (upstream_dir / "provenance.json").write_text(json.dumps(provenance))
        command = ["attest", base, "--key", "cosign.key", "--type", "provenance", "--predicate", "provenance.json"]
        assert run_cli([*command, "--replace"], upstream_dir, env=ENV).code == 0

    def refused(why: str, lacking: str = "provenance (builder https://builders.example.test/*, source") -> None:
        run = run_cli(["run"], consumer)
        assert run.code == 1, run.output
        assert f"lacks the {lacking}" in run.output
        assert why in run.output
        assert plain_peek.all_tags(f"{namespace}/consumer/app") == set()  # nothing built, nothing pushed
        verify = run_cli(["verify", base], consumer)
        assert verify.code == 1 and why in verify.output
        promoted = run_cli(["promote", base, destination, "--version", "1.0.0"], consumer)
        assert promoted.code == 1 and "promote: source" in promoted.output and why in promoted.output
        assert plain_peek.all_tags(f"{namespace}/released") == set()

    refused("no attestation")  # signed, but no provenance at all
    attest("https://elsewhere.example.test/ci", "https://git.example.test/upstream/base")
    refused("names builder 'https://elsewhere.example.test/ci'")
    attest("https://builders.example.test/ci", "https://git.example.test/someone-else/base")
    refused("names https://git.example.test/someone-else/base, not https://git.example.test/upstream/*")
    # verify --type provenance under the policy prints only provenance that meets its conditions.
    typed = run_cli(["verify", base, "--type", "provenance"], consumer)
    assert typed.code == 1 and "names https://git.example.test/someone-else/base" in typed.output
    attest("https://builders.example.test/ci", "https://git.example.test/upstream/base")
    typed = run_cli(["verify", base, "--type", "provenance", "--json"], consumer)
    assert typed.code == 0, typed.output
    [shown] = json.loads(typed.stdout)["attestations"]
    assert shown["predicate"]["runDetails"]["builder"]["id"] == "https://builders.example.test/ci"
    refused("no https://cyclonedx.org/bom attestation verifies", lacking="sbom attestation")  # sbom: true
    (upstream_dir / "sbom.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}))
    command = ["attest", base, "--key", "cosign.key", "--type", "sbom", "--predicate", "sbom.json"]
    assert run_cli(command, upstream_dir, env=ENV).code == 0
    accepted = run_cli(["run"], consumer)
    assert accepted.code == 0, accepted.output
    promoted = run_cli(["promote", base, destination, "--version", "1.0.0"], consumer)
    assert promoted.code == 0, promoted.output
    assert "1.0.0" in plain_peek.all_tags(f"{namespace}/released")
    assert plain_peek.all_tags(f"{namespace}/consumer/app") != set()
    verify = run_cli(["verify", base], consumer)
    assert verify.code == 0 and "provenance (builder https://builders.example.test/*" in verify.output
