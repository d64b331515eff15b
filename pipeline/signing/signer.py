"""Signers: what signs a digest or an attestation about it, and where the result is stored. A key
signer writes cosign's legacy form, OCI 1.1 referrers or both; the keyless signer (keyless.py) writes
sigstore bundles as referrers. Runs, `pipeline sign`, `pipeline attest` and `promote --resign` all go
through this one protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.keys import SigningKey
from pipeline.signing.payloads import (
    IN_TOTO_PAYLOAD_TYPE,
    SIGN_PREDICATE,
    b64,
    envelope_payload,
    in_toto_statement,
    pae,
    parse_statement,
    simple_signing_payload,
)
from pipeline.signing.storage import (
    BUNDLE_MEDIA_TYPE,
    read_bundles,
    read_legacy,
    read_legacy_attestations,
    write_bundle,
    write_legacy,
    write_legacy_attestation,
)

SignatureStorage = Literal["legacy", "referrers", "both"]


@dataclass(frozen=True)
class SignOutcome:
    digest: str
    key_id: str  # the key id, or the keyless identity and its issuer
    written: tuple[str, ...]  # forms written now
    already: tuple[str, ...]  # forms where this signer's signature (or attestation) was already present


@dataclass(frozen=True)
class Attestation:
    """What a signer is asked to attest about a digest: a predicate of `predicate_type`, made by
    `make_predicate` only when an attestation is written; `replace`: also where this signer made one."""

    predicate_type: str
    make_predicate: Callable[[], Any]
    replace: bool = False


class Signer(Protocol):
    @property
    def identity(self) -> str: ...

    def sign(self, registry: RegistryClient, repository: Repository, digest: str) -> SignOutcome: ...

    def attest(self, registry: RegistryClient, repository: Repository, digest: str, asked: Attestation) -> SignOutcome:
        """Attest the predicate `asked.make_predicate` returns (called only when an attestation is written)."""
        ...


def key_envelope(key: SigningKey, statement: bytes) -> dict[str, Any]:
    """A DSSE envelope over an in-toto statement, as `cosign attest` writes it."""
    signature = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": b64(statement),
        "signatures": [{"keyid": "", "sig": b64(signature)}],
    }


def key_bundle(key: SigningKey, statement: bytes) -> dict[str, Any]:
    """A sigstore bundle (v0.3) with `key`'s DSSE envelope over `statement`."""
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.public.key_id}, "tlogEntries": []},
        "dsseEnvelope": key_envelope(key, statement),
    }


def _envelope_payload(envelope: Any, key: SigningKey) -> bytes | None:
    return envelope_payload(envelope, key.public.verify)


def _predicate_type_of(payload: bytes | None) -> str | None:
    if payload is None:
        return None
    try:
        return parse_statement(payload).predicate_type
    except ValueError:
        return None


class KeySigner:
    """Signs and attests with a cosign key in the configured storage forms."""

    def __init__(self, key: SigningKey, storage: SignatureStorage = "legacy") -> None:
        self.key = key
        self.storage = storage

    @property
    def identity(self) -> str:
        return self.key.public.key_id

    def _forms(self) -> tuple[bool, bool]:
        return self.storage in ("legacy", "both"), self.storage in ("referrers", "both")

    def sign(self, registry: RegistryClient, repository: Repository, digest: str) -> SignOutcome:
        """Sign `repository@digest` (never a tag). Several keys' signatures coexist; signing again with
        the same key adds nothing."""
        written: list[str] = []
        already: list[str] = []
        legacy, referrers = self._forms()
        if legacy:
            payload = simple_signing_payload(str(repository), digest)
            existing, manifest = read_legacy(registry, repository, digest)
            # The payload is the same for every key, so only a layer that verifies with *this* key counts.
            if any(self.key.public.verify(s.signature, s.payload) for s in existing):
                already.append("legacy")
            else:
                write_legacy(registry, repository, digest, payload, self.key.sign(payload), manifest)
                written.append("legacy")
        if referrers:
            if self._has_bundle(registry, repository, digest, SIGN_PREDICATE):
                already.append("referrers")
            else:
                statement = in_toto_statement(str(repository), digest)
                write_bundle(registry, repository, digest, key_bundle(self.key, statement))
                written.append("referrers")
        return SignOutcome(digest, self.identity, tuple(written), tuple(already))

    def _has_bundle(self, registry: RegistryClient, repository: Repository, digest: str, predicate_type: str) -> bool:
        """Whether a referrer bundle of this key already holds a statement of `predicate_type`."""
        return any(
            _predicate_type_of(_envelope_payload(b.get("dsseEnvelope") or {}, self.key)) == predicate_type
            for b in read_bundles(registry, repository, digest)
            if "publicKey" in (b.get("verificationMaterial") or {})
        )

    def attest(self, registry: RegistryClient, repository: Repository, digest: str, asked: Attestation) -> SignOutcome:
        """Attest `make_predicate()` about `repository@digest`. An attestation of this type this key already
        made is kept (a reused image keeps the provenance of the build that made it), unless `replace`
        (then, as `cosign attest --replace`, the legacy layer is swapped; referrers are added)."""
        predicate_type, make_predicate, replace = asked.predicate_type, asked.make_predicate, asked.replace
        statement_bytes: list[bytes] = []

        def statement() -> bytes:  # made once, and only if some form is written
            if not statement_bytes:
                statement_bytes.append(in_toto_statement(str(repository), digest, predicate_type, make_predicate()))
            return statement_bytes[0]

        written: list[str] = []
        already: list[str] = []
        legacy, referrers = self._forms()
        if legacy:
            stored, manifest = read_legacy_attestations(registry, repository, digest)
            mine = next(
                (s for s in stored if _predicate_type_of(_envelope_payload(s.envelope, self.key)) == predicate_type),
                None,
            )
            if mine is not None and not replace:
                already.append("legacy")
            else:
                envelope = key_envelope(self.key, statement())
                position = mine.position if mine is not None else None
                write_legacy_attestation(registry, repository, digest, envelope, predicate_type, manifest, position)
                written.append("legacy")
        if referrers:
            if not replace and self._has_bundle(registry, repository, digest, predicate_type):
                already.append("referrers")
            else:
                write_bundle(registry, repository, digest, key_bundle(self.key, statement()), predicate_type)
                written.append("referrers")
        return SignOutcome(digest, self.identity, tuple(written), tuple(already))


def sign_digest(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    key: SigningKey,
    storage: SignatureStorage = "legacy",
) -> SignOutcome:
    """Sign `repository@digest` with `key` (see KeySigner.sign)."""
    return KeySigner(key, storage).sign(registry, repository, digest)
