"""The trust policy of pipelines.yaml: which signatures a repository's images need."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.schema import ConfigSpec
from pipeline.dockerfile.bases import base_images, dockerfile_text, shown_path
from pipeline.errors import VerificationFailed
from pipeline.plan import PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import ImageRef
from pipeline.signing.payloads import CYCLONEDX_BOM, SLSA_PROVENANCE_V1
from pipeline.signing.policy import AttestationRequirement, IdentityRequirement, KeyRequirement, Requirement
from pipeline.signing.verify import first_met

AttestationRule = tuple[list[Requirement], AttestationRequirement]  # (signers: any one, what it must attest)


@dataclass(frozen=True)
class TrustPolicy:
    # (repository patterns, signers: any one of them, attestations each must carry signed by one of them)
    rules: tuple[tuple[tuple[str, ...], tuple[Requirement, ...], tuple[AttestationRequirement, ...]], ...] = ()

    @classmethod
    def from_config(cls, spec: ConfigSpec, base_dir: Path) -> TrustPolicy:
        rules = []
        trust_config = str(base_dir / spec.sigstore.trust_config) if spec.sigstore.trust_config else None
        for rule in spec.trust:
            from pipeline.signing.keys import read_public_key  # cryptography: only for a policy with rules

            requirements: list[Requirement] = [
                KeyRequirement(read_public_key(base_dir / key), key) for key in rule.keys
            ]
            requirements += [IdentityRequirement(i.issuer, i.subject, trust_config) for i in rule.identities]
            attestations = []
            if rule.provenance is not None:
                attestations.append(
                    AttestationRequirement(
                        SLSA_PROVENANCE_V1,
                        "provenance",
                        tuple(rule.provenance.builder_ids),
                        tuple(rule.provenance.sources),
                    )
                )
            if rule.sbom:
                attestations.append(AttestationRequirement(CYCLONEDX_BOM, "sbom"))
            rules.append((tuple(rule.repositories), tuple(requirements), tuple(attestations)))
        return cls(tuple(rules))

    def _matching(self, repository: str) -> list[tuple[tuple[Requirement, ...], tuple[AttestationRequirement, ...]]]:
        return [
            (signers, attestations)
            for patterns, signers, attestations in self.rules
            if any(fnmatch.fnmatchcase(repository, p) for p in patterns)
        ]

    def requirements_for(self, repository: str) -> list[list[Requirement]]:
        """One list per matching rule; each rule is met by any one of its keys or identities."""
        return [list(signers) for signers, _ in self._matching(repository)]

    def attestations_for(self, repository: str) -> list[AttestationRule]:
        """Each attestation a matching rule asks for, with the signers any one of which must have signed it."""
        return [
            (list(signers), wanted) for signers, attestations in self._matching(repository) for wanted in attestations
        ]


def enforce(registry: RegistryClient, policy: TrustPolicy, ref: ImageRef, what: str) -> str | None:
    """Verify `ref` against every matching rule; return its digest, None if no rule applies.
    Raise VerificationFailed naming `what` (e.g. "shop/app: base image …") otherwise. An index must
    pass with every child (a build or a puller gets one of them); a failing child is named by platform."""
    alternatives_per_rule = policy.requirements_for(str(ref.repository))
    attestations = policy.attestations_for(str(ref.repository))
    if not alternatives_per_rule:
        return None
    digest = ref.digest or registry.resolve_digest(ref)
    if digest is None:
        raise VerificationFailed(f"{what} {ref}: not found in the registry, so its signature cannot be checked")
    children = index_platforms(registry, ref.repository, digest)
    subjects = [(digest, f"{ref.repository}@{digest}")]
    subjects += [(child, f"{ref.repository}@{digest}: its {platform} image {child}") for child, platform in children]
    for subject, shown in subjects:
        for alternatives in alternatives_per_rule:
            _, passing, why = first_met(registry, ref.repository, subject, alternatives)
            if passing is None:
                raise VerificationFailed(f"{what} {shown} is not signed as the trust policy requires: {why}")
        for alternatives, wanted in attestations:
            _, passing, why = first_met(
                registry, ref.repository, subject, alternatives, wanted.predicate_type, wanted.accept
            )
            if passing is None:
                raise VerificationFailed(
                    f"{what} {shown} lacks the {wanted.describe()} attestation the trust policy requires: {why}"
                )
    return digest


# An image's (or variant's) view and its build args -> each external base reference -> the digest the
# build stands on in it (an index's digest: every child is checked), as the run resolved it (pipeline.bases).
PinnedBases = Callable[[PlannedImage, Mapping[str, str]], Mapping[str, str]]


class BaseImageGate:
    """Before an image is built: every base image it did not build in this run, where the trust
    policy covers it, must carry the required signature. With `pinned`, the digest checked is the one the
    build stands on (the run's resolution), not what the tag points at by the time this looks."""

    def __init__(
        self,
        registry: RegistryClient,
        policy: TrustPolicy,
        own_repositories: set[str],
        pinned: PinnedBases | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.own = own_repositories
        self.pinned = pinned

    def __call__(self, image: PlannedImage, build_args: Mapping[str, str]) -> list[str]:
        if not self.policy.rules:
            return []
        shown = shown_path(image.dockerfile)
        try:
            text = dockerfile_text(image.dockerfile)
        except OSError as exc:
            raise VerificationFailed(f"{image.key}: cannot read {shown}: {exc.strerror}") from None
        verified = []
        # Raises UnresolvedBaseImage (naming the line) for a base it cannot work out: never built unchecked.
        bases = base_images(text, build_args, platform=image.platform, target=image.target, source=shown)
        pinned = self.pinned(image, build_args) if self.pinned is not None else {}
        for base in bases:
            if str(base.ref.repository) in self.own:
                continue  # built (and signed, if configured) in this run
            ref = base.ref
            if str(ref) in pinned:
                ref = ImageRef(ref.repository, digest=pinned[str(ref)])
            digest = enforce(self.registry, self.policy, ref, f"{image.key}: {shown}:{base.line}: base image")
            if digest:
                verified.append(f"{base.ref.repository}@{digest}")
        return verified
