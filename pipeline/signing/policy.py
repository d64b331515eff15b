"""What a signature must satisfy: a key or a keyless identity. Plain data, imported by verify.py and
keyless.py alike so that neither needs the other."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # keys.py loads cryptography; a run whose trust policy names no key never needs it
    from pipeline.signing.keys import PublicKey


@dataclass(frozen=True)
class KeyRequirement:
    key: PublicKey
    name: str  # where the key came from, for messages

    def describe(self) -> str:
        return f"key {self.name}"

    def signer(self) -> tuple[str, ...]:
        """Who must have signed: the key itself, whatever file named it."""
        return ("key", self.key.pem().decode())


@dataclass(frozen=True)
class IdentityRequirement:
    issuer: str
    subject: str
    trust_config: str | None = None  # path to a sigstore ClientTrustConfig JSON; None = public instance

    def describe(self) -> str:
        return f"identity {self.subject} from {self.issuer}"

    def signer(self) -> tuple[str, ...]:
        return ("identity", self.issuer, self.subject, self.trust_config or "")


Requirement = KeyRequirement | IdentityRequirement


def distinct(requirements: list[Requirement]) -> list[Requirement]:
    """Each signer once (the first naming of it): one key given as two files is one requirement."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for requirement in requirements:
        if requirement.signer() not in seen:
            seen.add(requirement.signer())
            kept.append(requirement)
    return kept


@dataclass(frozen=True)
class AttestationRequirement:
    """An attestation of `predicate_type` the image must carry (signed as its trust rule says); for
    provenance, made by one of `builder_ids` from one of `sources` (glob patterns; none: any)."""

    predicate_type: str
    name: str  # provenance | sbom, for messages
    builder_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def describe(self) -> str:
        said = [f"builder {' or '.join(self.builder_ids)}"] if self.builder_ids else []
        said += [f"source {' or '.join(self.sources)}"] if self.sources else []
        return f"{self.name}" + (f" ({', '.join(said)})" if said else "")

    def accept(self, predicate: Any) -> str | None:
        """None when the predicate says what this requirement asks; else what it says instead."""
        if self.builder_ids:
            builder = _get(predicate, "runDetails", "builder", "id")
            if not isinstance(builder, str) or not any(fnmatch.fnmatchcase(builder, p) for p in self.builder_ids):
                return f"names builder {builder!r}, not {' or '.join(self.builder_ids)}"
        if self.sources:
            found = git_sources(predicate)
            if not any(fnmatch.fnmatchcase(source, p) for source in found for p in self.sources):
                shown = ", ".join(found) or "no git source"
                return f"names {shown}, not {' or '.join(self.sources)}"
        return None


def _get(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def git_sources(predicate: Any) -> list[str]:
    """The repositories of a provenance's git dependencies (those with a gitCommit digest): the URI
    without `git+` and without the `@ref` after its path."""
    found = []
    dependencies = _get(predicate, "buildDefinition", "resolvedDependencies")
    for dependency in dependencies if isinstance(dependencies, list) else []:
        digest = dependency.get("digest") if isinstance(dependency, dict) else None
        if not isinstance(digest, dict) or "gitCommit" not in digest:
            continue
        uri = str(dependency.get("uri") or "")
        uri = uri.removeprefix("git+")
        parts = urlsplit(uri)
        path = parts.path.split("@", 1)[0]
        found.append(urlunsplit((parts.scheme, parts.netloc, path, "", "")) if parts.scheme else uri)
    return found
