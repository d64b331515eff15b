"""Verifying an image's signatures against keys or keyless identities.

A signature counts only if it verifies cryptographically AND its claims name this image: the
manifest digest must match, and the repository (docker-reference, tag ignored) must be this one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.signing.payloads import Claims, envelope_payload, parse_in_toto, parse_simple_signing, parse_statement
from pipeline.signing.policy import IdentityRequirement, KeyRequirement, Requirement
from pipeline.signing.storage import (
    LegacySignature,
    StoredEnvelope,
    read_bundles,
    read_legacy,
    read_legacy_attestations,
)

if TYPE_CHECKING:  # a key arrives as an object: its cryptography is loaded by whoever read it
    from pipeline.signing.keys import PublicKey


@dataclass
class Evidence:
    """Everything stored for one digest."""

    legacy: list[LegacySignature] = field(default_factory=list)
    bundles: list[dict[str, Any]] = field(default_factory=list)
    attestations: list[StoredEnvelope] = field(default_factory=list)  # `.att` layers, read only when asked

    @property
    def empty(self) -> bool:
        return not self.legacy and not self.bundles and not self.attestations

    def count(self) -> int:
        """How many signatures (or attestations) are stored, each once: the same layer or bundle listed
        twice (a `.sig` layer repeated, a referrer in the fallback index twice) is one signature."""
        legacy = {(s.payload, s.signature) for s in self.legacy}
        bundles = {json.dumps(b, sort_keys=True) for b in self.bundles}
        envelopes = {json.dumps(a.envelope, sort_keys=True) for a in self.attestations}
        return len(legacy) + len(bundles) + len(envelopes)


def collect(registry: RegistryClient, repository: Repository, digest: str, attestations: bool = False) -> Evidence:
    """What is stored for `digest`: the `.sig` layers and the referrers' bundles; for an attestation
    check, the `.att` layers instead of the `.sig` ones."""
    if attestations:
        stored, _ = read_legacy_attestations(registry, repository, digest)
        return Evidence([], read_bundles(registry, repository, digest), stored)
    legacy, _ = read_legacy(registry, repository, digest)
    return Evidence(legacy, read_bundles(registry, repository, digest))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    problem: str | None = None  # "bad signature: …" or "wrong identity: …"
    form: str | None = None


def _claims_match(claims: Claims, repository: Repository, digest: str) -> str | None:
    """The signed digest must be this one. The signed repository may differ: an image promoted (copied
    by digest) to another repository keeps its signatures, and cosign, Kyverno and the sigstore
    policy-controller check only the digest too. Which repositories' images need which signers is the
    trust policy's job (rules match the repository being verified), and `verify` reports a signature
    made for another repository (`signed for …`)."""
    if claims.digest != digest:
        return f"wrong identity: the signature is for digest {claims.digest}"
    return None


def _key_bundle_payload(bundle: dict[str, Any], key: PublicKey) -> bytes | None:
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or "certificate" in json.dumps(bundle.get("verificationMaterial", {})):
        return None
    return envelope_payload(envelope, key.verify)


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
            claimed = parse(payload).repository
            shown = form if claimed == str(repository) else f"{form}, signed for {claimed}"
            return Outcome(True, form=shown)
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
class VerifiedAttestation:
    """An attestation whose signature verified and whose statement names this digest."""

    predicate_type: str
    predicate: Any
    form: str  # legacy | referrers
    signer: str  # the requirement it met


Accept = Callable[[Any], str | None]  # a predicate condition: None when the predicate is acceptable, else why not


def _attestation_payloads(evidence: Evidence, requirement: Requirement) -> Iterator[tuple[str, bytes]]:
    """(storage form, statement) for every attestation signed as `requirement` asks."""
    if isinstance(requirement, KeyRequirement):
        for stored in evidence.attestations:
            payload = envelope_payload(stored.envelope, requirement.key.verify)
            if payload is not None:
                yield "legacy", payload
        for bundle in evidence.bundles:
            payload = _key_bundle_payload(bundle, requirement.key)
            if payload is not None:
                yield "referrers", payload
        return
    from pipeline.signing.keyless import verify_identity_bundle  # sigstore is heavy; load it only when needed

    for bundle in evidence.bundles:
        payload = verify_identity_bundle(bundle, requirement)
        if payload is not None:
            yield "referrers", payload


def check_attestation(
    evidence: Evidence,
    requirement: Requirement,
    digest: str,
    predicate_type: str,
    accept: Accept | None = None,
) -> tuple[Outcome, list[VerifiedAttestation]]:
    """Every attestation of `predicate_type` about `digest` signed as `requirement` asks (and, with
    `accept`, whose predicate it accepts). Fails closed: none at all is a failure naming why."""
    found: list[VerifiedAttestation] = []
    seen: set[bytes] = set()
    problem = None
    for form, payload in _attestation_payloads(evidence, requirement):
        try:
            statement = parse_statement(payload)
        except ValueError as exc:
            problem = problem or f"bad attestation: {exc}"
            continue
        if statement.predicate_type != predicate_type:
            continue
        claims = statement.claims_for(digest)
        if claims is None:
            problem = f"wrong subject: the {predicate_type} attestation is for {statement.subjects[0][1]}"
            continue
        rejected = accept(statement.predicate) if accept else None
        if rejected:
            problem = f"{predicate_type} attestation signed by {requirement.describe()} {rejected}"
            continue
        if payload in seen:
            continue  # the same statement in both storage forms
        seen.add(payload)
        found.append(VerifiedAttestation(predicate_type, statement.predicate, form, requirement.describe()))
    if found:
        return Outcome(True, form=found[0].form), found
    return Outcome(False, problem or f"no {predicate_type} attestation verifies with {requirement.describe()}"), []


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
    attestations: tuple[VerifiedAttestation, ...] = ()  # when an attestation type was verified

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def verify_digest(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    requirements: list[Requirement],
    predicate_type: str | None = None,
    accept: Accept | None = None,
) -> Verification:
    """Every requirement must be met by at least one signature on `digest` or, given `predicate_type`,
    by at least one attestation of that type (whose predicate `accept` takes, when given)."""
    evidence = collect(registry, repository, digest, attestations=predicate_type is not None)
    found = evidence.count()
    if evidence.empty:
        return Verification(repository, digest, False, "no attestation" if predicate_type else "no signature", (), 0)
    satisfied: list[str] = []
    attested: list[VerifiedAttestation] = []
    for requirement in requirements:
        if predicate_type is not None:
            outcome, verified = check_attestation(evidence, requirement, digest, predicate_type, accept)
            attested += verified
        elif isinstance(requirement, KeyRequirement):
            outcome = check_key(evidence, requirement, repository, digest)
        else:
            outcome = check_identity(evidence, requirement, repository, digest)
        if not outcome.ok:
            return Verification(repository, digest, False, outcome.problem, tuple(satisfied), found)
        satisfied.append(f"{requirement.describe()} ({outcome.form})")
    return Verification(repository, digest, True, None, tuple(satisfied), found, attestations=tuple(attested))


def first_met(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    alternatives: list[Requirement],
    predicate_type: str | None = None,
    accept: Accept | None = None,
) -> tuple[Requirement | None, Verification | None, str]:
    """One trust-policy rule: the first alternative `digest` meets (that alternative, its verification, ""),
    else (None, None, the first alternative's reason). Shared by `pipeline verify` and the trust gate of
    run and promote."""
    first_reason = None
    for requirement in alternatives:
        result = verify_digest(registry, repository, digest, [requirement], predicate_type, accept)
        if result.verified:
            return requirement, result, ""
        first_reason = first_reason or result.reason or "not verified"
    return None, None, first_reason or "not verified"
