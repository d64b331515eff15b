"""What a signature must satisfy: a key or a keyless identity. Plain data, imported by verify.py and
keyless.py alike so that neither needs the other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keys.py loads cryptography; a run whose trust policy names no key never needs it
    from pipeline.signing.keys import PublicKey


@dataclass(frozen=True)
class KeyRequirement:
    key: PublicKey
    name: str  # where the key came from, for messages

    def describe(self) -> str:
        return f"key {self.name}"


@dataclass(frozen=True)
class IdentityRequirement:
    issuer: str
    subject: str
    trust_config: str | None = None  # path to a sigstore ClientTrustConfig JSON; None = public instance

    def describe(self) -> str:
        return f"identity {self.subject} from {self.issuer}"


Requirement = KeyRequirement | IdentityRequirement
