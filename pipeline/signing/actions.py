"""Signing and verifying an image reference, as `pipeline sign` and `pipeline verify` do: the tag is
resolved to its digest, which is signed and stored, or checked against the requirements and the trust policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.errors import UsageError, VerificationFailed
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
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
    missing image is reported before anyone is prompted.

    An index is signed recursively, as `cosign sign --recursive` does: every child manifest, then the
    index. Children first, so that a signing stopped half-way never leaves a signed index over unsigned
    children (verification of an index fails closed on any unsigned child anyway)."""
    digest = _digest_of(registry, ref)
    children = index_platforms(registry, ref.repository, digest)
    sign_one: Callable[[str], tuple[str, tuple[str, ...], tuple[str, ...]]]
    if key_path is not None:
        key = read_private_key(key_path, passphrase(str(key_path)))

        def sign_one(subject: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
            outcome = sign_digest(registry, ref.repository, subject, key, storage)
            return outcome.key_id, outcome.written, outcome.already

    else:
        token = identity_token()
        if not token:
            raise UsageError("give --key FILE, or an OIDC identity token for keyless signing")
        from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import

        keyless = KeylessSigner(token, trust_config)

        def sign_one(subject: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
            write_bundle(registry, ref.repository, subject, keyless.bundle(str(ref.repository), subject))
            return keyless.identity, ("referrers",), ()

    signed_children = tuple(
        SignResult(ref.repository, child, *sign_one(child), platform=platform) for child, platform in children
    )
    return SignResult(ref.repository, digest, *sign_one(digest), children=signed_children)


def _verify_one(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    required: list[Requirement],
    policy_rules: list[list[Requirement]],
    platform: str = "",
) -> Verification:
    result = verify_digest(registry, repository, digest, required)
    satisfied = list(result.satisfied)
    reason = result.reason
    for alternatives in policy_rules if result.verified else []:
        passing, why = verify_any(registry, repository, digest, alternatives)
        if passing is None:
            reason = f"trust policy: {why}"
            break
        satisfied += passing.satisfied
    return Verification(
        repository, digest, reason is None, reason, tuple(satisfied), result.signatures_found, platform=platform
    )


def verify_reference(
    registry: RegistryClient,
    ref: ImageRef,
    required: list[Requirement],
    policy_rules: list[list[Requirement]],
) -> Verification:
    """Every requirement in `required` must hold, then each trust policy rule through any one of its
    alternatives; `satisfied` lists what held, `signatures_found` counts what is stored for the digest.

    An index is verified with every child: a child without an acceptable signature fails the whole
    verification (fail closed; the reason names the child's platform), since a puller gets a child,
    never the index itself."""
    digest = _digest_of(registry, ref)
    top = _verify_one(registry, ref.repository, digest, required, policy_rules)
    children = tuple(
        _verify_one(registry, ref.repository, child, required, policy_rules, platform)
        for child, platform in index_platforms(registry, ref.repository, digest)
    )
    failed = next((c for c in children if not c.verified), None)
    reason = top.reason
    if reason is None and failed is not None:
        reason = f"child {failed.platform} ({failed.digest}): {failed.reason}"
    return replace(top, verified=reason is None, reason=reason, children=children)
