"""A remembered reuse verdict cannot be forged through the registry client's content store (issue 25).

The content store keeps any blob a registry serves, named by its own digest: a `.sig` whose payload is
exactly a verdict's bytes would land there after one read. Verdicts live apart, named by an HMAC.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipeline.errors import RegistryError
from pipeline.registry.contentcache import ContentCache
from pipeline.signing.policy import KeyRequirement
from pipeline.signing.reuse import ReuseVerifier, VerdictStore

DIGEST = "sha256:" + "ab" * 32


class _Unreachable:
    """A registry that answers nothing: only a remembered verdict can make a candidate pass."""

    def __init__(self, content: ContentCache) -> None:
        self.content = content

    def manifest_by_digest(self, repository: Any, digest: str) -> Any:
        raise RegistryError("registry unreachable")


def _parts(tmp_path: Path) -> tuple[Any, Any, Any, ContentCache]:
    key = SimpleNamespace(pem=lambda: b"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n")
    requirement = KeyRequirement(key, "cosign.pub")  # type: ignore[arg-type]
    signer = SimpleNamespace(requirement_for=lambda image: requirement)
    image = SimpleNamespace(repository="127.0.0.1:5000/shop/app", pipeline="shop", sign=SimpleNamespace(attest=()))
    content = ContentCache(tmp_path / "cache" / "content")
    return image, signer, requirement, content


def test_a_verdict_planted_in_the_content_store_vouches_for_nothing(tmp_path: Path) -> None:
    image, signer, requirement, content = _parts(tmp_path)
    # What an attacker's `.sig` payload would be, stored the way get_blob stores any blob it reads.
    forged = ReuseVerifier._verdict(image, DIGEST, requirement, None)
    content.put("sha256:" + hashlib.sha256(forged).hexdigest(), forged)
    # A plain file in the verdict directory named like a content-store entry is no verdict either.
    verdicts = tmp_path / "cache" / "verdicts"
    verdicts.mkdir(parents=True)
    (verdicts / hashlib.sha256(forged).hexdigest()).write_bytes(forged)

    verifier = ReuseVerifier(_Unreachable(content), signer, VerdictStore(verdicts))  # type: ignore[arg-type]

    assert verifier(image, DIGEST, None) == f"{DIGEST} could not be verified: registry unreachable"


def test_a_verdict_that_passed_is_remembered_under_a_private_secret(tmp_path: Path) -> None:
    image, signer, _, content = _parts(tmp_path)
    checks: list[str] = []

    class Passing(ReuseVerifier):
        def _check(self, image: Any, digest: str, *rest: Any) -> str | None:
            checks.append(digest)
            return None

    verdicts = tmp_path / "cache" / "verdicts"
    registry = _Unreachable(content)
    assert Passing(registry, signer, VerdictStore(verdicts))(image, DIGEST, None) is None  # type: ignore[arg-type]
    # A later run (a new verifier, the same store) does not check again; another digest is checked.
    assert Passing(registry, signer, VerdictStore(verdicts))(image, DIGEST, None) is None  # type: ignore[arg-type]
    assert checks == [DIGEST]
    other = "sha256:" + "cd" * 32
    assert ReuseVerifier(registry, signer, VerdictStore(verdicts))(image, other, None) is not None  # type: ignore[arg-type]
    assert stat.S_IMODE(os.stat(verdicts / "secret").st_mode) == 0o600
    assert not list((tmp_path / "cache" / "content").rglob("*"))  # nothing about verdicts in the content store
