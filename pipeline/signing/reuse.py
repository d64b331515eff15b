"""Vouching for an earlier build before a signing pipeline reuses it (or builds on its layer cache).

An `inputs-` tag is written by anyone with push rights and an image's labels are plain text: only the
pipeline's own signature says an image is its build. A candidate is reused only when its digest verifies
with the pipeline's signer (its key, or its keyless identity and issuer) and, where the pipeline attests
provenance, a provenance attestation by that signer names the candidate as subject and the input digest
the run computed. An image index must be signed itself, and so must each child (as the signer signs an
index: every child, then the index); with provenance, each child's names one of the variants' input digests.

Verification is `verify.verify_digest`, the one `pipeline verify` uses. A digest that passed is remembered
in the registry client's content cache (a verdict is content named by its own digest), so a no-op run
verifies each image once, not on every run.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.cache.inputs import INPUTS_LABEL, InputDigest
from pipeline.errors import RegistryError
from pipeline.plan import PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.signing.payloads import SLSA_PROVENANCE_V1
from pipeline.signing.policy import KeyRequirement, Requirement
from pipeline.signing.runsigner import RunSigner
from pipeline.signing.verify import Accept, verify_digest


def _input_digest_of(predicate: Any) -> Any:
    found = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    found = found.get("internalParameters") if isinstance(found, dict) else None
    return found.get("inputDigest") if isinstance(found, dict) else None


def names_inputs(wanted: set[str] | None) -> Accept:
    """A provenance predicate condition: its input digest is one of `wanted` (None: any, for an index)."""

    def accept(predicate: Any) -> str | None:
        found = _input_digest_of(predicate)
        if wanted is None or found in wanted:
            return None
        return f"names input digest {found}, not {' or '.join(sorted(wanted))}"

    return accept


class ReuseVerifier:
    """The executor's `Vouch` for pipelines with `reuse: trusted`: None when a candidate may be used, else
    why not (`sha256:… is not signed by this pipeline's key …`)."""

    def __init__(self, registry: RegistryClient, signer: RunSigner) -> None:
        self.registry = registry
        self.signer = signer

    def __call__(self, image: PlannedImage, digest: str, inputs: InputDigest | None) -> str | None:
        requirement = self.signer.requirement_for(image)
        if requirement is None:
            return f"{digest} cannot be checked: pipeline {image.pipeline} does not sign"
        # A cache source is checked for its signature only: its layers' cache keys are its own build's.
        provenance = inputs is not None and image.sign is not None and "provenance" in image.sign.attest
        verdict = self._verdict(image, digest, requirement, inputs if provenance else None)
        if self._known(verdict):
            return None
        try:
            problem = self._check(image, digest, requirement, inputs, provenance)
        except RegistryError as exc:
            return f"{digest} could not be verified: {exc}"
        if problem is None:
            self._remember(verdict)
        return problem

    def _check(
        self,
        image: PlannedImage,
        digest: str,
        requirement: Requirement,
        inputs: InputDigest | None,
        provenance: bool,
    ) -> str | None:
        whose = "key" if isinstance(requirement, KeyRequirement) else "identity"
        children = index_platforms(self.registry, image.repository, digest)
        subjects = [(digest, "", None if children or inputs is None else {inputs.digest})]
        wanted_children = {v.digest for v in inputs.variants.values()} if inputs is not None else None
        subjects += [(child, f" (its {platform} image)", wanted_children) for child, platform in children]
        for subject, shown, wanted in subjects:
            signed = verify_digest(self.registry, image.repository, subject, [requirement])
            if not signed.verified:
                return f"{subject}{shown} is not signed by this pipeline's {whose} ({signed.reason})"
            if not provenance:
                continue
            attested = verify_digest(
                self.registry, image.repository, subject, [requirement], SLSA_PROVENANCE_V1, names_inputs(wanted)
            )
            if not attested.verified:
                return (
                    f"{subject}{shown} has no provenance by this pipeline's {whose} for these inputs "
                    f"({attested.reason})"
                )
            if wanted is not None and children:
                # The child's own label must be the input digest its signed provenance names.
                label = self.registry.manifest_labels(
                    image.repository, self.registry.manifest_by_digest(image.repository, subject)
                ).get(INPUTS_LABEL)
                named = {_input_digest_of(a.predicate) for a in attested.attestations}
                if label not in named:
                    return f"{subject}{shown}: its provenance names other inputs than its label {label}"
        return None

    @staticmethod
    def _verdict(image: PlannedImage, digest: str, requirement: Requirement, inputs: InputDigest | None) -> bytes:
        wanted = inputs.digest if inputs is not None else ""
        signer = "\0".join(requirement.signer())
        return f"pipeline reuse verdict v1\n{image.repository}\n{digest}\n{signer}\n{wanted}\n".encode()

    def _known(self, verdict: bytes) -> bool:
        cache = self.registry.content
        return cache is not None and cache.get("sha256:" + hashlib.sha256(verdict).hexdigest()) is not None

    def _remember(self, verdict: bytes) -> None:
        if self.registry.content is not None:
            self.registry.content.put("sha256:" + hashlib.sha256(verdict).hexdigest(), verdict)
