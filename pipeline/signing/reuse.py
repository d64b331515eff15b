"""Vouching for an earlier build before a signing pipeline reuses it (or builds on its layer cache).

An `inputs-` tag is written by anyone with push rights and an image's labels are plain text: only the
pipeline's own signature says an image is its build. A candidate is reused only when its digest verifies
with the pipeline's signer (its key, or its keyless identity and issuer) and, where the pipeline attests
provenance, a provenance attestation by that signer names the candidate as subject and the input digest
the run computed. An image index must be signed itself, and so must each child (as the signer signs an
index: every child, then the index); with provenance, each child's names one of the variants' input digests.

Verification is `verify.verify_digest`, the one `pipeline verify` uses. A digest that passed is remembered
in a verdict store of its own (`VerdictStore`), so a no-op run verifies each image once, not on every run.
Never in the registry client's content store: that one holds any blob a registry serves, named by its own
digest, so a verdict kept there could be planted as a signature's payload.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from pipeline.cache.inputs import INPUTS_LABEL, InputDigest, labelled_inputs
from pipeline.errors import RegistryError
from pipeline.files import create_private, fresh_file
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


class VerdictStore:
    """Verdicts that passed, as empty files named by their HMAC under a random per-store secret (`secret`,
    0600, made on first use): only this code writes here, and a file put here by other means names
    nothing without the secret. A failure to read or write only costs a verification."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _secret(self, create: bool) -> bytes | None:
        path = self.directory / "secret"
        try:
            return path.read_bytes() or None
        except FileNotFoundError:
            if not create:
                return None
        except OSError:
            return None
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = create_private(path)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            return path.read_bytes() or None
        except FileExistsError:
            return self._secret(False)
        except OSError:
            return None

    def _path(self, verdict: bytes, create: bool) -> Path | None:
        secret = self._secret(create)
        if secret is None:
            return None
        return self.directory / hmac.new(secret, verdict, hashlib.sha256).hexdigest()

    def known(self, verdict: bytes) -> bool:
        path = self._path(verdict, create=False)
        return path is not None and path.is_file()

    def remember(self, verdict: bytes) -> None:
        path = self._path(verdict, create=True)
        if path is None:
            return
        try:
            handle, name = fresh_file(path)
            os.close(handle)
            os.replace(name, path)
        except OSError:
            pass


class ReuseVerifier:
    """The executor's `Vouch` for pipelines with `reuse: trusted`: None when a candidate may be used, else
    why not (`sha256:… is not signed by this pipeline's key …`)."""

    def __init__(self, registry: RegistryClient, signer: RunSigner, verdicts: VerdictStore | None = None) -> None:
        self.registry = registry
        self.signer = signer
        self.verdicts = verdicts

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
                # (a child of one build of several variants: one of the variants' inputs its labels name).
                labels = self.registry.manifest_labels(
                    image.repository, self.registry.manifest_by_digest(image.repository, subject)
                )
                named = {_input_digest_of(a.predicate) for a in attested.attestations}
                if not labelled_inputs(labels) & named & wanted:
                    return (
                        f"{subject}{shown}: its provenance names other inputs than its label {labels.get(INPUTS_LABEL)}"
                    )
        return None

    @staticmethod
    def _verdict(image: PlannedImage, digest: str, requirement: Requirement, inputs: InputDigest | None) -> bytes:
        wanted = inputs.digest if inputs is not None else ""
        signer = "\0".join(requirement.signer())
        return f"pipeline reuse verdict v1\n{image.repository}\n{digest}\n{signer}\n{wanted}\n".encode()

    def _known(self, verdict: bytes) -> bool:
        return self.verdicts is not None and self.verdicts.known(verdict)

    def _remember(self, verdict: bytes) -> None:
        if self.verdicts is not None:
            self.verdicts.remember(verdict)
