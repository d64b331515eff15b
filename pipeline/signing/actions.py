"""Signing and verifying an image reference, as `pipeline sign` and `pipeline verify` do: the tag is
resolved to its digest, which is signed and stored, or checked against the requirements and the trust policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError, VerificationFailed
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import ImageRef, Repository
from pipeline.signing.keys import read_private_key
from pipeline.signing.policy import Requirement
from pipeline.signing.signer import SignatureStorage, sign_digest
from pipeline.signing.storage import write_bundle
from pipeline.signing.verify import Verification, verify_any, verify_digest


@dataclass(frozen=True)
class SignResult:
    repository: Repository
    digest: str
    signer: str  # the key id, or the keyless identity and its issuer
    written: tuple[str, ...]  # storage forms written now
    already_signed: tuple[str, ...]  # forms where this key's signature was already present

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def _digest_of(registry: RegistryClient, ref: ImageRef) -> str:
    digest = ref.digest or registry.resolve_digest(ref)
    if digest is None:
        raise VerificationFailed(f"{ref}: not found in the registry")
    return digest


def sign_reference(
    registry: RegistryClient,
    ref: ImageRef,
    *,
    key_path: Path | None,
    passphrase: Callable[[str], str],
    identity_token: Callable[[], str | None],
    trust_config: str | None,
    storage: SignatureStorage,
) -> SignResult:
    """Sign `ref`'s digest (never the tag) with the key at `key_path`, else keyless as the identity
    token's subject. The passphrase and the token are asked for only once the digest is known, so a
    missing image is reported before anyone is prompted."""
    digest = _digest_of(registry, ref)
    if key_path is not None:
        key = read_private_key(key_path, passphrase(str(key_path)))
        outcome = sign_digest(registry, ref.repository, digest, key, storage)
        return SignResult(ref.repository, digest, outcome.key_id, outcome.written, outcome.already)
    token = identity_token()
    if not token:
        raise UsageError("give --key FILE, or an OIDC identity token for keyless signing")
    from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import

    keyless = KeylessSigner(token, trust_config)
    write_bundle(registry, ref.repository, digest, keyless.bundle(str(ref.repository), digest))
    return SignResult(ref.repository, digest, keyless.identity, ("referrers",), ())


def verify_reference(
    registry: RegistryClient,
    ref: ImageRef,
    required: list[Requirement],
    policy_rules: list[list[Requirement]],
) -> Verification:
    """Every requirement in `required` must hold, then each trust policy rule through any one of its
    alternatives; `satisfied` lists what held, `signatures_found` counts what is stored for the digest."""
    digest = _digest_of(registry, ref)
    result = verify_digest(registry, ref.repository, digest, required)
    satisfied = list(result.satisfied)
    reason = result.reason
    for alternatives in policy_rules if result.verified else []:
        passing, why = verify_any(registry, ref.repository, digest, alternatives)
        if passing is None:
            reason = f"trust policy: {why}"
            break
        satisfied += passing.satisfied
    return Verification(ref.repository, digest, reason is None, reason, tuple(satisfied), result.signatures_found)
