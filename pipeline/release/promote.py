"""Promotion: copy an already tested image by digest to another repository, with its signatures,
attestations and referrers (or signed anew there), and apply its release tags."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from pipeline.common.reporting import Forward, Reporter
from pipeline.errors import RegistryError, TagConflict
from pipeline.registry.client import RegistryClient
from pipeline.registry.copy import CopyStats, copy_image
from pipeline.registry.reference import ImageRef, Repository
from pipeline.release.carry import Carried, carry_supply_chain
from pipeline.release.claims import ReleaseClaims
from pipeline.release.publish import (
    TagChange,
    Target,
    apply_changes,
    decide_changes,
    revision_of,
    verify_published,
)
from pipeline.signing.actions import SignResult
from pipeline.signing.attached import KINDS
from pipeline.signing.trust import TrustPolicy, enforce
from pipeline.versioning import TagSet

SOURCE_IS = "the source is"


@dataclass(frozen=True)
class Promotion:
    source: ImageRef
    digest: str
    destination: Repository
    stats: CopyStats
    changes: list[TagChange]
    carried: Carried
    resigned: SignResult | None = None


def promote(
    registry: RegistryClient,
    source: ImageRef,
    destination: Repository,
    tags: TagSet,
    force: bool,
    notify: Reporter,
    policy: TrustPolicy | None = None,
    resign: Callable[[ImageRef], SignResult] | None = None,
    claims_for: Callable[[str], ReleaseClaims] | None = None,
) -> Promotion:
    """Resolve the source to a digest, check the destination's tags, copy the image, then what is
    attached to it (or, with `resign`, sign the destination's digest and carry all but signatures),
    check a tag-named source did not move meanwhile, then decide again and apply the destination's tags
    (release tag immutable, floating tags by the rules). Signatures arrive before any tag: if carrying
    or signing fails, no tag moves. `claims_for` (a digest -> its claims on a git remote shared with other
    runners) claims the version before the copy and publishes under the destination's lease."""
    digest = source.digest or registry.resolve_digest(source)
    if digest is None:
        raise RegistryError(f"{source}: not found in the registry")
    if source.digest is None:
        notify.step("", "resolve", f"{source} is {digest}")
    if policy is not None and enforce(registry, policy, source.repository.with_digest(digest), "promote: source"):
        notify.step("", "trust", f"{source.repository}@{digest} is signed as the trust policy requires")
    target = Target(str(destination), destination, tags, digest)
    claims = claims_for(digest) if claims_for is not None and tags.release is not None else None
    if claims is not None:
        claims.claim()  # before the first write: another runner's claim on this version stops here
    promoted = None
    try:
        promoted = _copy_and_tag(registry, source, digest, destination, target, force, notify, resign, claims)
    finally:
        if claims is not None and promoted is None:
            claims.abandon()
    return promoted


def _copy_and_tag(
    registry: RegistryClient,
    source: ImageRef,
    digest: str,
    destination: Repository,
    target: Target,
    force: bool,
    notify: Reporter,
    resign: Callable[[ImageRef], SignResult] | None,
    claims: ReleaseClaims | None,
) -> Promotion:
    # A release tag that names another digest refuses the promotion before a single blob is copied.
    try:
        decide_changes([target], registry, force, digest_is=SOURCE_IS)
    except TagConflict as exc:
        raise TagConflict(f"{exc} and nothing was copied") from None
    stats = copy_image(registry, source.repository, digest, destination, Forward(lambda m: notify.step("", "copy", m)))
    resigned = None
    kinds = KINDS
    if resign is not None:
        resigned = resign(destination.with_digest(digest))
        notify.step("", "sign", f"{destination}@{digest} signed by {resigned.signer}")
        kinds = tuple(k for k in KINDS if k != "signature")
    carried = carry_supply_chain(
        registry, source.repository, digest, destination, Forward(lambda m: notify.step("", "carry", m)), kinds
    )
    if source.digest is None:
        now = registry.resolve_digest(source)
        if now != digest:
            raise TagConflict(
                f"{source} moved from {digest} to {now} during the copy; nothing was tagged. "
                f"Promote by digest: {source.repository}@{digest}"
            )
    # Decided again: the destination's tags may have moved while the blobs were copied; with a git remote,
    # under the destination's lease, so that no other runner decides and writes in between.
    with claims.publishing() if claims is not None else nullcontext():
        changes = decide_changes([target], registry, force, digest_is=SOURCE_IS)
        say = Forward(step=lambda _image, step, message: notify.step("", step, message))
        apply_changes(changes, registry, say)
        changes = verify_published(changes, [target], registry, say, revision_of(registry))
    return Promotion(source, digest, destination, stats, changes, carried, resigned)
