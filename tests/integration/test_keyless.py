"""Keyless signing end to end, offline: sigstore-python against local Fulcio and Rekor (@sigstore/mock)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.signing.storage import read_bundles
from tests.helpers import BASE_DOCKERFILE, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.keyless.services import ISSUER, SUBJECT, make_token, running_sigstore


@pytest.fixture
def trust_config(tmp_path: Path, services: Services) -> Iterator[Path]:
    if not services.sigstore_mock_node_path or shutil.which("node") is None:
        pytest.fail("node and @sigstore/mock are needed (bash scripts/services installs them)")
    workdir = tmp_path / "sigstore"
    workdir.mkdir()
    with running_sigstore(workdir, services.sigstore_mock_node_path) as config:
        yield config


def test_keyless_sign_and_verify_with_identity(
    tmp_path: Path, services: Services, namespace: str, trust_config: Path
) -> None:
    project = tmp_path / "project"
    write_project(
        project,
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\n"
        "pipelines:\n  p:\n    images:\n      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    pushed = run_cli(["run", "--json"], project)
    assert pushed.code == 0, pushed.output
    ref = json.loads(pushed.stdout)["images"][0]["reference"]

    token = make_token()
    signed = run_cli(["sign", ref, "--identity-token", token, "--trust-config", str(trust_config), "--json"], project)
    assert signed.code == 0, signed.output
    assert json.loads(signed.stdout)["signer"] == f"{SUBJECT} ({ISSUER})"
    assert token not in signed.output

    verify = ["verify", ref, "--trust-config", str(trust_config), "--certificate-oidc-issuer", ISSUER]
    ok = run_cli([*verify, "--certificate-identity", SUBJECT, "--json"], project)
    assert ok.code == 0, ok.output
    assert json.loads(ok.stdout)["satisfied"] == [f"identity {SUBJECT} from {ISSUER} (referrers)"]

    wrong = run_cli([*verify, "--certificate-identity", "mailto:mallory@pipeline.test"], project)
    assert wrong.code == 1
    assert "wrong identity" in wrong.output


def test_run_signs_keyless_and_the_trust_policy_accepts_the_identity(
    tmp_path: Path, services: Services, namespace: str, trust_config: Path, plain_peek: RegistryPeek
) -> None:
    project = tmp_path / "project"
    write_project(
        project,
        f"""\
        registry: {services.plain_registry}/{namespace}
        network: none
        sigstore: {{trust_config: {trust_config}}}
        sign: {{keyless: true, attest: [provenance, sbom]}}
        trust:
          - repositories: ["{services.plain_registry}/{namespace}/*"]
            identities: [{{issuer: "{ISSUER}", subject: "{SUBJECT}"}}]
            provenance: {{builder_ids: ["https://github.com/pipeline-build/pipeline/builders/*"]}}
            sbom: true
        pipelines:
          p:
            images:
              base: {{context: images/base}}
              multi: {{context: images/multi, platforms: [linux/amd64, linux/arm64]}}
        """,
        {"base": BASE_DOCKERFILE, "multi": "FROM scratch\nCOPY f /f\n"},
        busybox=("base",),
    )
    (project / "images" / "multi" / "f").write_text("f\n")
    sha = init_git(project)
    result = run_cli(["run", "--version", "1.0.0"], project, env={"SIGSTORE_ID_TOKEN": make_token()})
    assert result.code == 0, result.output
    assert f"as {SUBJECT} ({ISSUER})" in result.stderr
    # `verify` with no flags applies the trust policy of ./pipelines.yaml.
    verified = run_cli(["verify", f"{services.plain_registry}/{namespace}/base:1.0.0"], project)
    assert verified.code == 0, verified.output
    # An image index: the run signed it and both children keylessly; verify checks all three.
    index = run_cli(["verify", f"{services.plain_registry}/{namespace}/multi:1.0.0", "--json"], project)
    assert index.code == 0, index.output
    children = json.loads(index.stdout)["children"]
    assert sorted(c["platform"] for c in children) == ["linux/amd64", "linux/arm64"], index.stdout
    # The run attested keylessly too: the trust policy's provenance and SBOM held for the index and each
    # child, and the provenance read back names the commit and the child's platform.
    for image in (json.loads(index.stdout), *children):
        assert any(s.startswith("provenance (builder") and SUBJECT in s for s in image["satisfied"]), image
        assert any(s.startswith("sbom attested by identity") for s in image["satisfied"]), image
    arm64 = next(c for c in children if c["platform"] == "linux/arm64")
    # The arm64 child's provenance, verified as this identity (and refused as another).
    as_identity = ["verify", arm64["reference"], "--type", "provenance", "--trust-config", str(trust_config)]
    as_identity += ["--certificate-oidc-issuer", ISSUER, "--certificate-identity"]
    provenance = run_cli([*as_identity, SUBJECT, "--json"], project)
    assert provenance.code == 0, provenance.output
    predicate = json.loads(provenance.stdout)["attestations"][0]["predicate"]
    assert predicate["buildDefinition"]["externalParameters"]["platform"] == "linux/arm64"
    assert {"gitCommit": sha} in [d.get("digest") for d in predicate["buildDefinition"]["resolvedDependencies"]]
    # The index's SBOM names its platform images, by digest.
    index_sbom = run_cli(
        ["verify", f"{services.plain_registry}/{namespace}/multi:1.0.0", "--type", "sbom", "--json"], project
    )
    assert index_sbom.code == 0, index_sbom.output
    components = json.loads(index_sbom.stdout)["attestations"][0]["predicate"]["components"]
    assert sorted(c["version"] for c in components) == sorted(c["reference"].split("@")[1] for c in children)
    wrong = run_cli([*as_identity, "mailto:mallory@pipeline.test"], project)
    assert wrong.code == 1
    # One Fulcio certificate served the whole run: every bundle (3 images x signature, provenance, SBOM)
    # carries the same one.
    registry = RegistryClient(lambda _: None)
    repository = parse_repository(f"{services.plain_registry}/{namespace}/multi")
    certificates = {
        json.dumps(bundle["verificationMaterial"].get("certificate"), sort_keys=True)
        for image in (json.loads(index.stdout), *children)
        for bundle in read_bundles(registry, repository, image["reference"].split("@")[1])
    }
    assert len(certificates) == 1, certificates
    # Running again (everything reused) keeps the signatures and attestations: no bundle is added.
    base_digest = json.loads(index.stdout)["children"][0]["reference"].split("@")[1]
    fallback = (f"{namespace}/multi", base_digest.replace(":", "-"))
    before = plain_peek.manifest(*fallback)
    again = run_cli(["run", "--version", "1.0.0"], project, env={"SIGSTORE_ID_TOKEN": make_token()})
    assert again.code == 0, again.output
    after = plain_peek.manifest(*fallback)
    assert before is not None and after is not None
    assert len(after[1]["manifests"]) == len(before[1]["manifests"]) == 3  # signature, provenance, SBOM
    missing_token = run_cli(["run", "--version", "1.0.1"], project, env={"SIGSTORE_ID_TOKEN": ""})
    assert missing_token.code == 2
    assert "keyless signing needs an OIDC identity token" in missing_token.output
