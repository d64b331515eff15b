"""The in-toto v1 statement an attestation signs: signing's own statement is unchanged byte for byte,
and one with a predicate is compact, deterministic JSON that the signature readers parse back."""

from __future__ import annotations

import pytest

from pipeline.signing.payloads import SLSA_PROVENANCE_V1, Claims, in_toto_statement, parse_in_toto, parse_statement

DIGEST = "sha256:" + "ab" * 32


def test_the_signing_statement_is_what_it_was() -> None:
    # Signatures made before attestations existed sign these exact bytes.
    assert in_toto_statement("localhost:5000/shop/api", DIGEST) == (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"localhost:5000/shop/api",'
        b'"digest":{"sha256":"' + b"ab" * 32 + b'"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1",'
        b'"predicate":{}}'
    )


def test_a_statement_carries_its_predicate_type_and_predicate() -> None:
    predicate = {"buildDefinition": {"buildType": "https://example/t/v1"}, "runDetails": {"builder": {"id": "b"}}}
    payload = in_toto_statement("localhost:5000/shop/api", DIGEST, SLSA_PROVENANCE_V1, predicate)
    assert payload == (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"localhost:5000/shop/api",'
        b'"digest":{"sha256":"' + b"ab" * 32 + b'"}}],"predicateType":"https://slsa.dev/provenance/v1",'
        b'"predicate":{"buildDefinition":{"buildType":"https://example/t/v1"},"runDetails":{"builder":{"id":"b"}}}}'
    )
    statement = parse_statement(payload)
    assert statement.claims_for(DIGEST) == Claims("localhost:5000/shop/api", DIGEST)
    assert statement.predicate_type == SLSA_PROVENANCE_V1
    # An attestation is never read as a signature.
    with pytest.raises(ValueError, match="an attestation"):
        parse_in_toto(payload)


def test_a_predicate_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError):
        in_toto_statement("localhost:5000/shop/api", DIGEST, SLSA_PROVENANCE_V1, {"ratio": float("nan")})
