"""Signing and verifying an image reference, as `pipeline sign` and `pipeline verify` do: the tag is
resolved to its digest, which is signed and stored, or checked against the requirements and the trust policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError, VerificationFailed
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import ImageRef, Repository
from pipeline.signing.keys import read_private_key
from pipeline.signing.policy import Requirement, distinct
from pipeline.signing.signer import Attestation, KeySigner, SignatureStorage, Signer, SignOutcome
from pipeline.signing.trust import TrustPolicy
from pipeline.signing.verify import Verification, first_met, verify_digest


@dataclass(frozen=True)
class SignResult:
    repository: Repository
    digest: str
    signer: str  # the key id, or the keyless identity and its issuer
    written: tuple[str, ...]  # storage forms written now
    already_signed: tuple[str, ...]  # forms where this key's signature was already present
    platform: str = ""  # for a child of an index: `linux/arm64`, `windows/amd64 10.0.17763`
    children: tuple[SignResult, ...] = ()  # an index's children, each signed too

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def _digest_of(registry: RegistryClient, ref: ImageRef) -> str:
    digest = ref.digest or registry.resolve_digest(ref)
    if digest is None:
        raise VerificationFailed(f"{ref}: not found in the registry")
    return digest


def make_signer(
    *,
    key_path: Path | None,
    passphrase: Callable[[str], str],
    identity_token: Callable[[], str | None],
    trust_config: str | None,
    storage: SignatureStorage,
) -> Signer:
    """The key at `key_path` (its passphrase asked for now), else keyless as the identity token's subject."""
    if key_path is not None:
        if not key_path.is_file():
            raise UsageError(f"{key_path}: no such key file")
        return KeySigner(read_private_key(key_path, passphrase(str(key_path))), storage)
    token = identity_token()
    if not token:
        raise UsageError("give --key FILE, or an OIDC identity token for keyless signing")
    from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import

    return KeylessSigner(token, trust_config)


def sign_reference(registry: RegistryClient, ref: ImageRef, signer: Callable[[], Signer]) -> SignResult:
    """Sign `ref`'s digest (never the tag) with the signer `signer` makes (e.g. `make_signer` with its
    arguments bound). It is made (its passphrase or token asked for) only once the digest is known, so a
    missing image is reported before anyone is prompted."""
    digest = _digest_of(registry, ref)
    return sign_recursively(registry, ref.repository, digest, signer())


def sign_recursively(registry: RegistryClient, repository: Repository, digest: str, signer: Signer) -> SignResult:
    """An index is signed recursively, as `cosign sign --recursive` does: every child manifest, then the
    index. Children first, so that a signing stopped half-way never leaves a signed index over unsigned
    children (verification of an index fails closed on any unsigned child anyway)."""

    def result(outcome: SignOutcome, **extra: Any) -> SignResult:
        return SignResult(repository, outcome.digest, outcome.key_id, outcome.written, outcome.already, **extra)

    children = tuple(
        result(signer.sign(registry, repository, child), platform=platform)
        for child, platform in index_platforms(registry, repository, digest)
    )
    return result(signer.sign(registry, repository, digest), children=children)


def _verify_one(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    required: list[Requirement],
    policy: TrustPolicy | None,
    predicate_type: str | None,
    platform: str = "",
) -> Verification:
    required = distinct(required)
    result = verify_digest(registry, repository, digest, required, predicate_type)
    satisfied = list(result.satisfied)
    attestations = list(result.attestations)
    reason = result.reason
    # Signers already shown to hold: a rule naming one of them (the key given as --key, by another path) is
    # met by it and is not listed again, so that one signature reads as one.
    held = {requirement.signer() for requirement in required}
    rules = policy.requirements_for(str(repository)) if policy is not None and result.verified else []
    for alternatives in rules:
        if any(alternative.signer() in held for alternative in alternatives):
            continue
        met, passing, why = first_met(registry, repository, digest, alternatives, predicate_type)
        if met is None or passing is None:
            reason = f"trust policy: {why}"
            break
        held.add(met.signer())
        satisfied += passing.satisfied
        attestations += [a for a in passing.attestations if a not in attestations]
    # The attestations a trust rule asks for: all of them with the signatures; with --type, those of
    # that type, whose conditions (builder, source) then also decide which predicates are shown.
    wanted_attestations = [
        (alternatives, wanted)
        for alternatives, wanted in (policy.attestations_for(str(repository)) if policy is not None else [])
        if predicate_type is None or wanted.predicate_type == predicate_type
    ]
    for alternatives, wanted in wanted_attestations if reason is None else []:
        _, passing, why = first_met(registry, repository, digest, alternatives, wanted.predicate_type, wanted.accept)
        if passing is None:
            reason = f"trust policy: {wanted.describe()}: {why}"
            break
        satisfied += [f"{wanted.describe()} attested by {s}" for s in passing.satisfied]
    attestations = [a for a in attestations if all(w.accept(a.predicate) is None for _, w in wanted_attestations)]
    return Verification(
        repository,
        digest,
        reason is None,
        reason,
        tuple(satisfied),
        result.signatures_found,
        platform=platform,
        attestations=tuple(attestations),
    )


def verify_reference(
    registry: RegistryClient,
    ref: ImageRef,
    required: list[Requirement],
    policy: TrustPolicy | None,
    predicate_type: str | None = None,
) -> Verification:
    """With `predicate_type`, the same for attestations of that type (as `cosign verify-attestation`):
    the verification carries each verified predicate.

    Every requirement in `required` must hold, then each trust policy rule through any one of its
    alternatives; `satisfied` lists what held, `signatures_found` counts what is stored for the digest.

    An index is verified with every child: a child without an acceptable signature fails the whole
    verification (fail closed; the reason names the child's platform), since a puller gets a child,
    never the index itself."""
    digest = _digest_of(registry, ref)
    top = _verify_one(registry, ref.repository, digest, required, policy, predicate_type)
    children = tuple(
        _verify_one(registry, ref.repository, child, required, policy, predicate_type, platform)
        for child, platform in index_platforms(registry, ref.repository, digest)
    )
    failed = next((c for c in children if not c.verified), None)
    reason = top.reason
    if reason is None and failed is not None:
        reason = f"child {failed.platform} ({failed.digest}): {failed.reason}"
    return replace(top, verified=reason is None, reason=reason, children=children)


@dataclass(frozen=True)
class AttestResult:
    reference: str
    predicate_type: str
    signer: str
    written: tuple[str, ...]
    already: tuple[str, ...]


def attest_reference(
    registry: RegistryClient,
    ref: ImageRef,
    signer: Callable[[], Signer],
    predicate_type: str,
    predicate: Any,
    replace: bool,
) -> AttestResult:
    """Attest `predicate` about `ref`'s digest (the tag resolved first), as `cosign attest` does: the
    digest given, not an index's children (attest those by their own digests). The signer is made (its
    passphrase or token asked for) once the digest is known."""
    digest = _digest_of(registry, ref)
    request = Attestation(predicate_type, lambda: predicate, replace)
    outcome = signer().attest(registry, ref.repository, digest, request)
    return AttestResult(f"{ref.repository}@{digest}", predicate_type, outcome.key_id, outcome.written, outcome.already)
