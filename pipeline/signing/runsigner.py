"""Signing a run's pushed digests as each pipeline's `sign:` says (a cosign key or keyless)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.errors import SigningError
from pipeline.plan import PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.signing.actions import sign_recursively
from pipeline.signing.keys import SigningKey
from pipeline.signing.policy import IdentityRequirement, KeyRequirement, Requirement
from pipeline.signing.signer import KeySigner, SignatureStorage, Signer

if TYPE_CHECKING:
    from pipeline.signing.keyless import KeylessSigner


class RunSigner:
    def __init__(self, registry: RegistryClient, keys: Mapping[str, SigningKey], keyless: KeylessSigner | None) -> None:
        self.registry = registry
        self.keys = keys
        self.keyless = keyless

    def signer_for(self, image: PlannedImage) -> Signer | None:
        """The signer of the image's pipeline (None where it does not sign)."""
        sign = image.sign
        if sign is None:
            return None
        if sign.key is not None:
            storage: SignatureStorage = (
                "both"
                if image.signature_storage == "both"
                else ("referrers" if image.signature_storage == "referrers" else "legacy")
            )
            return KeySigner(self.keys[sign.key], storage)
        if self.keyless is None:
            raise SigningError(f"{image.key}: keyless signing needs an identity token (--identity-token)")
        return self.keyless

    def requirement_for(self, image: PlannedImage) -> Requirement | None:
        """What a signature by the image's pipeline's signer verifies with (None where it does not sign):
        the key's public half, or the keyless identity and issuer of the run's token."""
        sign = image.sign
        if sign is None:
            return None
        if sign.key is not None:
            return KeyRequirement(self.keys[sign.key].public, sign.key)
        if self.keyless is None:
            return None
        token = self.keyless.token
        return IdentityRequirement(token.issuer, token.identity, self.keyless.trust_config)

    def __call__(self, image: PlannedImage, digest: str) -> str | None:
        """Sign `digest` if the image's pipeline signs; return what was done, for progress."""
        signer = self.signer_for(image)
        if signer is None:
            return None
        # An index is signed with every child, children first (see signing.actions.sign_recursively).
        signed = sign_recursively(self.registry, image.repository, digest, signer)
        done = ", ".join(signed.written) or f"already signed ({', '.join(signed.already_signed)})"
        children = f" and its {len(signed.children)} platform images" if signed.children else ""
        return f"signed {digest[:19]}{children} as {signed.signer}: {done}"
