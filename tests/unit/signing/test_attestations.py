"""Judging attestations (pure: stored envelopes and bundles in, verdicts out) and the trust policy's
provenance conditions."""

from __future__ import annotations

import json

from pipeline.registry.reference import parse_repository
from pipeline.signing import keys
from pipeline.signing.payloads import CYCLONEDX_BOM, SLSA_PROVENANCE_V1, b64, in_toto_statement
from pipeline.signing.policy import AttestationRequirement, KeyRequirement, git_sources
from pipeline.signing.signer import key_bundle, key_envelope
from pipeline.signing.storage import StoredEnvelope
from pipeline.signing.verify import Evidence, check_attestation, check_key

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
REPO = "r.example/shop/app"
PROVENANCE = {"runDetails": {"builder": {"id": "https://builders.example/ci"}}}


def stored(envelope: dict[str, object], annotated: str = SLSA_PROVENANCE_V1) -> StoredEnvelope:
    return StoredEnvelope(envelope, annotated, 0)


def test_an_attestation_verifies_with_its_key_and_type_only() -> None:
    key, other = keys.generate(), keys.generate()
    envelope = key_envelope(key, in_toto_statement(REPO, DIGEST, SLSA_PROVENANCE_V1, PROVENANCE))
    evidence = Evidence(attestations=[stored(envelope)])
    outcome, found = check_attestation(evidence, KeyRequirement(key.public, "k.pub"), DIGEST, SLSA_PROVENANCE_V1)
    assert outcome.ok and [(a.form, a.predicate) for a in found] == [("legacy", PROVENANCE)]
    wrong_key, _ = check_attestation(evidence, KeyRequirement(other.public, "o.pub"), DIGEST, SLSA_PROVENANCE_V1)
    assert not wrong_key.ok and "no https://slsa.dev/provenance/v1 attestation verifies with key o.pub" in str(
        wrong_key.problem
    )
    wrong_type, _ = check_attestation(evidence, KeyRequirement(key.public, "k.pub"), DIGEST, CYCLONEDX_BOM)
    assert not wrong_type.ok


def test_the_signed_statement_decides_never_the_layer_annotation() -> None:
    key = keys.generate()
    sbom = key_envelope(key, in_toto_statement(REPO, DIGEST, CYCLONEDX_BOM, {"bomFormat": "CycloneDX"}))
    # A layer annotated as provenance that holds an SBOM statement is an SBOM, not provenance.
    evidence = Evidence(attestations=[stored(sbom, annotated=SLSA_PROVENANCE_V1)])
    requirement = KeyRequirement(key.public, "k.pub")
    assert not check_attestation(evidence, requirement, DIGEST, SLSA_PROVENANCE_V1)[0].ok
    assert check_attestation(evidence, requirement, DIGEST, CYCLONEDX_BOM)[0].ok


def test_a_statement_about_another_digest_is_refused_and_several_subjects_are_read() -> None:
    key = keys.generate()
    requirement = KeyRequirement(key.public, "k.pub")
    elsewhere = key_envelope(key, in_toto_statement(REPO, OTHER, SLSA_PROVENANCE_V1, PROVENANCE))
    outcome, found = check_attestation(
        Evidence(attestations=[stored(elsewhere)]), requirement, DIGEST, SLSA_PROVENANCE_V1
    )
    assert not outcome.ok and found == [] and f"is for {OTHER}" in str(outcome.problem)
    statement = json.loads(in_toto_statement(REPO, OTHER, SLSA_PROVENANCE_V1, PROVENANCE))
    statement["subject"].append({"name": REPO, "digest": {"sha256": DIGEST.split(":")[1]}})
    both = key_envelope(key, json.dumps(statement).encode())
    assert check_attestation(Evidence(attestations=[stored(both)]), requirement, DIGEST, SLSA_PROVENANCE_V1)[0].ok


def test_a_tampered_envelope_and_a_signature_bundle_are_not_attestations() -> None:
    key = keys.generate()
    requirement = KeyRequirement(key.public, "k.pub")
    envelope = key_envelope(key, in_toto_statement(REPO, DIGEST, SLSA_PROVENANCE_V1, PROVENANCE))
    forged = dict(envelope, payload=b64(in_toto_statement(REPO, DIGEST, SLSA_PROVENANCE_V1, {"runDetails": {}})))
    assert not check_attestation(Evidence(attestations=[stored(forged)]), requirement, DIGEST, SLSA_PROVENANCE_V1)[0].ok
    signature = key_bundle(key, in_toto_statement(REPO, DIGEST))  # cosign's sign/v1 statement
    assert not check_attestation(Evidence(bundles=[signature]), requirement, DIGEST, SLSA_PROVENANCE_V1)[0].ok
    # ... and an attestation bundle is not a signature.
    attestation = key_bundle(key, in_toto_statement(REPO, DIGEST, SLSA_PROVENANCE_V1, PROVENANCE))
    assert not check_key(Evidence(bundles=[attestation]), requirement, parse_repository(REPO), DIGEST).ok
    assert check_key(Evidence(bundles=[signature]), requirement, parse_repository(REPO), DIGEST).ok


def provenance_from(builder: str, *sources: str) -> dict[str, object]:
    return {
        "buildDefinition": {
            "resolvedDependencies": [
                *({"uri": f"git+{s}@refs/heads/main", "digest": {"gitCommit": "a" * 40}} for s in sources),
                {"uri": "pkg:docker/base@1?repository_url=r.example", "digest": {"sha256": "b" * 64}},
            ]
        },
        "runDetails": {"builder": {"id": builder}},
    }


def test_provenance_conditions_match_builder_and_source_globs_exactly() -> None:
    wanted = AttestationRequirement(
        SLSA_PROVENANCE_V1, "provenance", ("https://builders.example/*",), ("https://git.example/upstream/*",)
    )
    assert (
        wanted.accept(provenance_from("https://builders.example/ci", "https://git.example/upstream/base.git")) is None
    )
    assert "names builder 'https://evil.example/ci'" in str(
        wanted.accept(provenance_from("https://evil.example/ci", "https://git.example/upstream/base.git"))
    )
    # A look-alike repository next to the allowed one does not match `upstream/*`.
    assert wanted.accept(provenance_from("https://builders.example/ci", "https://git.example/upstream-evil/base"))
    assert "no git source" in str(wanted.accept(provenance_from("https://builders.example/ci")))
    assert wanted.accept({"runDetails": "garbage"})  # malformed: refused, never an exception
    assert git_sources(provenance_from("b", "ssh://git@git.example/x/y.git")) == ["ssh://git@git.example/x/y.git"]
