"""Verifying an image's signatures against keys or keyless identities.

A signature counts only if it verifies cryptographically AND its claims name this image: the
manifest digest must match, and the repository (docker-reference, tag ignored) must be this one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.payloads import Claims, pae, parse_in_toto, parse_simple_signing
from pipeline.signing.policy import IdentityRequirement, KeyRequirement, Requirement
from pipeline.signing.storage import LegacySignature, read_bundles, read_legacy

if TYPE_CHECKING:  # a key arrives as an object: its cryptography is loaded by whoever read it
    from pipeline.signing.keys import PublicKey


@dataclass
class Evidence:
    """Everything stored for one digest."""

    legacy: list[LegacySignature] = field(default_factory=list)
    bundles: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.legacy and not self.bundles


def collect(registry: RegistryClient, repository: Repository, digest: str) -> Evidence:
    legacy, _ = read_legacy(registry, repository, digest)
    return Evidence(legacy, read_bundles(registry, repository, digest))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    problem: str | None = None  # "bad signature: …" or "wrong identity: …"
    form: str | None = None


def _claims_match(claims: Claims, repository: Repository, digest: str) -> str | None:
    if claims.digest != digest:
        return f"wrong identity: the signature is for digest {claims.digest}"
    if claims.repository != str(repository):
        return f"wrong identity: the signature is for repository {claims.repository}"
    return None


def _key_bundle_payload(bundle: dict[str, Any], key: PublicKey) -> bytes | None:
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or "certificate" in json.dumps(bundle.get("verificationMaterial", {})):
        return None
    try:
        payload = base64.b64decode(envelope["payload"])
        payload_type = str(envelope["payloadType"])
        signatures = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError):
        return None
    if any(key.verify(sig, pae(payload_type, payload)) for sig in signatures):
        return payload
    return None


Candidate = tuple[str, Callable[[bytes], Claims], bytes]  # (storage form, payload parser, verified payload)


def _judge(candidates: Iterable[Candidate], repository: Repository, digest: str, none_found: str) -> Outcome:
    """The first cryptographically verified payload whose claims name this image wins; a verified
    payload naming another image is a wrong identity; no verified payload at all is `none_found`."""
    mismatch = None
    for form, parse, payload in candidates:
        try:
            problem = _claims_match(parse(payload), repository, digest)
        except ValueError as exc:
            problem = f"wrong identity: {exc}"
        if problem is None:
            return Outcome(True, form=form)
        mismatch = problem
    return Outcome(False, mismatch or none_found)


def check_key(evidence: Evidence, requirement: KeyRequirement, repository: Repository, digest: str) -> Outcome:
    def candidates() -> Iterator[Candidate]:
        for stored in evidence.legacy:
            if requirement.key.verify(stored.signature, stored.payload):
                yield "legacy", parse_simple_signing, stored.payload
        for bundle in evidence.bundles:
            payload = _key_bundle_payload(bundle, requirement.key)
            if payload is not None:
                yield "referrers", parse_in_toto, payload

    return _judge(
        candidates(), repository, digest, f"bad signature: no signature verifies with {requirement.describe()}"
    )


def check_identity(
    evidence: Evidence, requirement: IdentityRequirement, repository: Repository, digest: str
) -> Outcome:
    from pipeline.signing.keyless import verify_identity_bundle  # sigstore is heavy; load it only when needed

    def candidates() -> Iterator[Candidate]:
        for bundle in evidence.bundles:
            payload = verify_identity_bundle(bundle, requirement)
            if payload is not None:
                yield "referrers", parse_in_toto, payload

    return _judge(candidates(), repository, digest, f"wrong identity: no bundle is signed by {requirement.describe()}")


@dataclass(frozen=True)
class Verification:
    repository: Repository
    digest: str
    verified: bool
    reason: str | None
    satisfied: tuple[str, ...]
    signatures_found: int
    platform: str = ""  # for a child of an index: `linux/arm64`, `windows/amd64 10.0.17763`
    children: tuple[Verification, ...] = ()  # an index's children, each verified the same way

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def verify_digest(
    registry: RegistryClient, repository: Repository, digest: str, requirements: list[Requirement]
) -> Verification:
    """Every requirement must be met by at least one signature on `digest`."""
    evidence = collect(registry, repository, digest)
    found = len(evidence.legacy) + len(evidence.bundles)
    if evidence.empty:
        return Verification(repository, digest, False, "no signature", (), 0)
    satisfied: list[str] = []
    for requirement in requirements:
        if isinstance(requirement, KeyRequirement):
            outcome = check_key(evidence, requirement, repository, digest)
        else:
            outcome = check_identity(evidence, requirement, repository, digest)
        if not outcome.ok:
            return Verification(repository, digest, False, outcome.problem, tuple(satisfied), found)
        satisfied.append(f"{requirement.describe()} ({outcome.form})")
    return Verification(repository, digest, True, None, tuple(satisfied), found)


def verify_any(
    registry: RegistryClient, repository: Repository, digest: str, alternatives: list[Requirement]
) -> tuple[Verification | None, str]:
    """One trust-policy rule: the first alternative `digest` meets (its verification, ""), else (None, the
    first alternative's reason). Shared by `pipeline verify` and the trust gate of run and promote."""
    first_reason = None
    for requirement in alternatives:
        result = verify_digest(registry, repository, digest, [requirement])
        if result.verified:
            return result, ""
        first_reason = first_reason or result.reason or "not verified"
    return None, first_reason or "not verified"
