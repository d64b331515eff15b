"""Signing a run's pushed digests as each pipeline's `sign:` says (a cosign key or keyless)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.errors import SigningError
from pipeline.plan import PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.signing.keys import SigningKey
from pipeline.signing.signer import SignatureStorage, sign_digest
from pipeline.signing.storage import write_bundle

if TYPE_CHECKING:
    from pipeline.signing.keyless import KeylessSigner


class RunSigner:
    def __init__(self, registry: RegistryClient, keys: Mapping[str, SigningKey], keyless: KeylessSigner | None) -> None:
        self.registry = registry
        self.keys = keys
        self.keyless = keyless

    def __call__(self, image: PlannedImage, digest: str) -> str | None:
        """Sign `digest` if the image's pipeline signs; return what was done, for progress."""
        sign = image.sign
        if sign is None:
            return None
        storage: SignatureStorage = (
            "both"
            if image.signature_storage == "both"
            else ("referrers" if image.signature_storage == "referrers" else "legacy")
        )
        # An index is signed with every child, children first (see signing.actions.sign_reference).
        subjects = [child for child, _platform in index_platforms(self.registry, image.repository, digest)]
        if sign.key is not None:
            key = self.keys[sign.key]
            outcomes = [sign_digest(self.registry, image.repository, d, key, storage) for d in [*subjects, digest]]
            outcome = outcomes[-1]
            done = ", ".join(outcome.written) or f"already signed ({', '.join(outcome.already)})"
            return f"signed {digest[:19]}{_with_children(subjects)} with {outcome.key_id}: {done}"
        if self.keyless is None:
            raise SigningError(f"{image.key}: keyless signing needs an identity token (--identity-token)")
        for subject in [*subjects, digest]:
            write_bundle(self.registry, image.repository, subject, self.keyless.bundle(str(image.repository), subject))
        return f"signed {digest[:19]}{_with_children(subjects)} as {self.keyless.identity} (bundle, referrers)"


def _with_children(children: list[str]) -> str:
    return f" and its {len(children)} platform images" if children else ""
