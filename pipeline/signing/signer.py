"""Signing an image digest with a key and storing the signature in its repository."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.keys import SigningKey
from pipeline.signing.payloads import (
    IN_TOTO_PAYLOAD_TYPE,
    b64,
    in_toto_statement,
    pae,
    simple_signing_payload,
)
from pipeline.signing.storage import BUNDLE_MEDIA_TYPE, read_legacy, write_bundle, write_legacy

SignatureStorage = Literal["legacy", "referrers", "both"]


@dataclass(frozen=True)
class SignOutcome:
    digest: str
    key_id: str
    written: tuple[str, ...]  # forms written now
    already: tuple[str, ...]  # forms where this key's signature was already present


def key_bundle(key: SigningKey, repository: str, digest: str) -> dict[str, object]:
    """A sigstore bundle (v0.3) with a DSSE envelope over an in-toto statement, signed by `key`."""
    statement = in_toto_statement(repository, digest)
    signature = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.public.key_id}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64(statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64(signature), "keyid": ""}],
        },
    }


def sign_digest(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    key: SigningKey,
    storage: SignatureStorage = "legacy",
) -> SignOutcome:
    """Sign `repository@digest` (never a tag). Several keys' signatures coexist; signing again with
    the same key adds nothing."""
    written: list[str] = []
    already: list[str] = []
    if storage in ("legacy", "both"):
        payload = simple_signing_payload(str(repository), digest)
        existing, manifest = read_legacy(registry, repository, digest)
        # The payload is the same for every key, so only a layer that verifies with *this* key counts.
        if any(key.public.verify(s.signature, s.payload) for s in existing):
            already.append("legacy")
        else:
            write_legacy(registry, repository, digest, payload, key.sign(payload), manifest)
            written.append("legacy")
    if storage in ("referrers", "both"):
        write_bundle(registry, repository, digest, key_bundle(key, str(repository), digest))
        written.append("referrers")
    return SignOutcome(digest, key.public.key_id, tuple(written), tuple(already))
