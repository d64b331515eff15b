"""Reading a signer and a kind from what is stored, without verifying anything (pure)."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.signing.attached import (
    FULCIO_ISSUER_V1,
    FULCIO_ISSUER_V2,
    Signer,
    bundle_predicate,
    bundle_signer,
    certificate_signer,
    kind_of,
)
from pipeline.signing.payloads import CYCLONEDX_BOM, SIGN_PREDICATE, SIMPLE_SIGNING_MEDIA_TYPE, SLSA_PROVENANCE_V1

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"


def fulcio_like(san: x509.GeneralName, issuer_v2: str | None, issuer_v1: str | None) -> x509.Certificate:
    """A certificate shaped like Fulcio's: no subject name, the identity in the SAN, the issuer in
    Fulcio's extensions (.8 a DER UTF8String, .1 the raw text)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
    )
    if issuer_v2 is not None:
        raw = issuer_v2.encode()
        der = bytes([0x0C, len(raw)]) + raw if len(raw) < 128 else bytes([0x0C, 0x81, len(raw)]) + raw
        builder = builder.add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER_V2, der), critical=False)
    if issuer_v1 is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(FULCIO_ISSUER_V1, issuer_v1.encode()), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_a_certificates_identity_and_issuer_are_read_from_pem_and_from_a_bundle() -> None:
    cert = fulcio_like(x509.RFC822Name("alice@example.com"), "https://accounts.example.com", None)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert certificate_signer(pem) == Signer(subject="alice@example.com", issuer="https://accounts.example.com")

    # v0.3 bundles carry the leaf as `certificate`, v0.1/v0.2 as the first of `x509CertificateChain`.
    raw = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = Signer(subject="alice@example.com", issuer="https://accounts.example.com")
    assert bundle_signer({"verificationMaterial": {"certificate": {"rawBytes": raw}}}) == expected
    chain = {"x509CertificateChain": {"certificates": [{"rawBytes": raw}]}}
    assert bundle_signer({"verificationMaterial": chain}) == expected
    assert expected.text == "alice@example.com (https://accounts.example.com)"
    assert expected.data() == {
        "kind": "certificate",
        "subject": "alice@example.com",
        "issuer": "https://accounts.example.com",
        "verified": False,
    }


def test_a_workflow_uri_san_a_long_issuer_and_the_older_issuer_extension() -> None:
    long_issuer = "https://" + "x" * 140 + ".example.com"  # past 127 bytes: DER's long length form
    cert = fulcio_like(x509.UniformResourceIdentifier(WORKFLOW), long_issuer, ISSUER)
    assert certificate_signer(cert.public_bytes(serialization.Encoding.DER)) == Signer(
        subject=WORKFLOW, issuer=long_issuer
    )  # .8 wins over the deprecated .1
    older = fulcio_like(x509.UniformResourceIdentifier(WORKFLOW), None, ISSUER)
    assert certificate_signer(older.public_bytes(serialization.Encoding.DER)).issuer == ISSUER


def test_a_key_hint_and_what_cannot_be_read() -> None:
    assert bundle_signer({"verificationMaterial": {"publicKey": {"hint": "sha256:abcd"}}}) == Signer(
        key_hint="sha256:abcd"
    )
    assert Signer(key_hint="sha256:abcd").text == "key sha256:abcd"
    assert Signer().text == "key (no hint stored)"
    assert Signer().data() == {"kind": "key", "hint": None, "verified": False}
    # A listing, not a verdict: garbage gives an empty signer, never an exception.
    assert certificate_signer(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n") == Signer()
    assert bundle_signer({"verificationMaterial": {"certificate": {"rawBytes": "%%%"}}}) == Signer()
    assert bundle_signer({}) == Signer()


def test_the_predicate_type_inside_a_bundles_envelope() -> None:
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": SLSA_PROVENANCE_V1}
    envelope = {"payload": base64.b64encode(json.dumps(statement).encode()).decode(), "payloadType": "x"}
    assert bundle_predicate({"dsseEnvelope": envelope}) == SLSA_PROVENANCE_V1
    assert bundle_predicate({"messageSignature": {}}) is None
    assert bundle_predicate({"dsseEnvelope": {"payload": "not base64!"}}) is None


@pytest.mark.parametrize(
    ("predicate", "media_type", "kind"),
    [
        (SIGN_PREDICATE, "application/vnd.dev.sigstore.bundle.v0.3+json", "signature"),
        (None, SIMPLE_SIGNING_MEDIA_TYPE, "signature"),
        (SLSA_PROVENANCE_V1, "application/vnd.dsse.envelope.v1+json", "attestation"),
        (CYCLONEDX_BOM, "application/vnd.dsse.envelope.v1+json", "sbom"),
        ("https://spdx.dev/Document", "", "sbom"),
        (None, "application/spdx+json", "sbom"),
        (None, "application/vnd.cyclonedx+json", "sbom"),
        ("https://example.com/custom/v1", "", "attestation"),
        (None, "application/vnd.example.thing", "other"),
    ],
)
def test_kind_of(predicate: str | None, media_type: str, kind: str) -> None:
    assert kind_of(predicate, media_type) == kind
