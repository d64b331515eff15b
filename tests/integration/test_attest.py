"""Attestations by hand (`pipeline attest`, `pipeline verify --type`), judged by trixie's cosign both ways."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pipeline.signing.payloads import CYCLONEDX_BOM, SLSA_PROVENANCE_V1
from pipeline.signing.storage import BUNDLE_PREDICATE_ANNOTATION, attestation_tag, fallback_referrers_tag
from tests.helpers import run_cli
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_signing import ENV, cosign, cosign_attest, push_unsigned

PROVENANCE = {
    "buildDefinition": {
        "buildType": "https://example.test/hand/v1",
        "externalParameters": {"note": "by hand"},
        "resolvedDependencies": [{"uri": "git+https://example.test/repo", "digest": {"gitCommit": "a" * 40}}],
    },
    "runDetails": {"builder": {"id": "https://example.test/builder"}},
}
SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []}


def cosign_verify_attestation(services: Services, key: Path, kind: str, ref: str) -> dict[str, object]:
    """cosign's verdict, and the statement it printed (it prints each verified envelope as a line)."""
    done = cosign(
        services,
        "verify-attestation",
        "--key",
        str(key),
        "--type",
        kind,
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        ref,
    )
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout.splitlines()[0])
    statement: dict[str, object] = json.loads(base64.b64decode(envelope["payload"]))
    return statement


def test_our_attestations_verify_with_cosign_and_with_pipeline(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    ref = push_unsigned(tmp_path, services, namespace)
    repository, digest = ref.split("@")
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    (tmp_path / "provenance.json").write_text(json.dumps(PROVENANCE))
    (tmp_path / "sbom.json").write_text(json.dumps(SBOM))
    for kind, predicate in (("provenance", "provenance.json"), ("sbom", "sbom.json")):
        done = run_cli(
            ["attest", ref, "--key", "cosign.key", "--type", kind, "--predicate", predicate, "--json"],
            tmp_path,
            env=ENV,
        )
        assert done.code == 0, done.output
        assert json.loads(done.stdout)["written"] == ["legacy", "referrers"]

    # Both storage forms are in the registry: the .att tag with one layer per type, and two referrers.
    path = repository.split("/", 1)[1]
    tags = plain_peek.tags(path)
    assert attestation_tag(digest) in tags
    att = plain_peek.manifest(path, attestation_tag(digest))
    referrers_index = plain_peek.manifest(path, fallback_referrers_tag(digest))
    assert att is not None and referrers_index is not None
    assert [layer["annotations"]["predicateType"] for layer in att[1]["layers"]] == [SLSA_PROVENANCE_V1, CYCLONEDX_BOM]
    referrers = referrers_index[1]["manifests"]
    assert sorted(r["annotations"][BUNDLE_PREDICATE_ANNOTATION] for r in referrers) == [
        CYCLONEDX_BOM,
        SLSA_PROVENANCE_V1,
    ]

    # Attesting again with the same key adds nothing; --replace swaps the legacy layer.
    again = run_cli(
        ["attest", ref, "--key", "cosign.key", "--type", "provenance", "--predicate", "provenance.json", "--json"],
        tmp_path,
        env=ENV,
    )
    assert json.loads(again.stdout)["already"] == ["legacy", "referrers"]

    statement = cosign_verify_attestation(services, tmp_path / "cosign.pub", "slsaprovenance1", ref)
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    assert statement["predicate"] == PROVENANCE
    assert statement["subject"] == [{"name": repository, "digest": {"sha256": digest.split(":")[1]}}]
    assert cosign_verify_attestation(services, tmp_path / "cosign.pub", "cyclonedx", ref)["predicate"] == SBOM

    ours = run_cli(["verify", ref, "--key", "cosign.pub", "--type", "provenance", "--json"], tmp_path)
    assert ours.code == 0, ours.output
    data = json.loads(ours.stdout)
    assert data["type"] == SLSA_PROVENANCE_V1
    # One statement, stored in both forms, verified in the first form found.
    assert [(a["form"], a["predicate"]) for a in data["attestations"]] == [("legacy", PROVENANCE)]
    text = run_cli(["verify", ref, "--key", "cosign.pub", "--type", "sbom"], tmp_path)
    assert text.code == 0 and '"bomFormat": "CycloneDX"' in text.output

    # Fail closed: another key, a type nobody attested, and a signature is not an attestation.
    assert run_cli(["keys", "generate", "--output-prefix", "other"], tmp_path, env=ENV).code == 0
    wrong = run_cli(["verify", ref, "--key", "other.pub", "--type", "provenance"], tmp_path)
    assert wrong.code == 1
    assert f"no {SLSA_PROVENANCE_V1} attestation verifies with key other.pub" in wrong.output
    missing = run_cli(["verify", ref, "--key", "cosign.pub", "--type", "https://example.test/vuln"], tmp_path)
    assert missing.code == 1 and "no https://example.test/vuln attestation verifies" in missing.output
    unsigned = run_cli(["verify", ref, "--key", "cosign.pub"], tmp_path)
    assert unsigned.code == 1, "an attestation must not count as a signature"
    # --replace swaps this key's legacy layer of the type (as cosign's) and adds a referrer.
    replaced = dict(PROVENANCE, buildDefinition={**PROVENANCE["buildDefinition"], "externalParameters": {"n": 2}})
    (tmp_path / "replaced.json").write_text(json.dumps(replaced))
    swap = ["attest", ref, "--key", "cosign.key", "--type", "provenance", "--predicate", "replaced.json", "--replace"]
    assert run_cli(swap, tmp_path, env=ENV).code == 0
    att = plain_peek.manifest(path, attestation_tag(digest))
    assert att is not None
    assert [layer["annotations"]["predicateType"] for layer in att[1]["layers"]] == [CYCLONEDX_BOM, SLSA_PROVENANCE_V1]
    # Referrers cannot be deleted here (Docker Distribution), so both statements are now attached there.
    shown = run_cli(["verify", ref, "--key", "cosign.pub", "--type", "provenance", "--json"], tmp_path)
    assert [a["predicate"] for a in json.loads(shown.stdout)["attestations"]] == [replaced, PROVENANCE]


def test_an_attestation_cosign_made_verifies_with_pipeline(tmp_path: Path, services: Services, namespace: str) -> None:
    ref = push_unsigned(tmp_path, services, namespace)
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    cosign_attest(services, tmp_path, ref, PROVENANCE)
    ours = run_cli(["verify", ref, "--key", "cosign.pub", "--type", "provenance", "--json"], tmp_path)
    assert ours.code == 0, ours.output
    predicate = json.loads(ours.stdout)["attestations"][0]["predicate"]
    # cosign parses the predicate into its SLSA v1 type and writes it out again (adding empty fields).
    assert predicate["buildDefinition"] == PROVENANCE["buildDefinition"]
    assert predicate["runDetails"]["builder"] == PROVENANCE["runDetails"]["builder"]
    # cosign's attestation is not ours for the SBOM type.
    assert run_cli(["verify", ref, "--key", "cosign.pub", "--type", "sbom"], tmp_path).code == 1
