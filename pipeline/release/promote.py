"""Promotion: copy an already tested image by digest to another repository and apply its release tags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import RegistryError, TagConflict
from pipeline.registry.client import RegistryClient
from pipeline.registry.copy import CopyStats, copy_image
from pipeline.registry.reference import ImageRef, Repository
from pipeline.release.publish import TagChange, Target, apply_changes, decide_changes
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


def promote(
    registry: RegistryClient,
    source: ImageRef,
    destination: Repository,
    tags: TagSet,
    force: bool,
    notify: Callable[[str, str], None],
    policy: TrustPolicy | None = None,
) -> Promotion:
    """Resolve the source to a digest, check the destination's tags, copy, check a tag-named source did
    not move meanwhile, then decide again and apply the destination's tags (release tag immutable,
    floating tags by the rules)."""
    digest = source.digest or registry.resolve_digest(source)
    if digest is None:
        raise RegistryError(f"{source}: not found in the registry")
    if source.digest is None:
        notify("resolve", f"{source} is {digest}")
    if policy is not None and enforce(registry, policy, source.repository.with_digest(digest), "promote: source"):
        notify("trust", f"{source.repository}@{digest} is signed as the trust policy requires")
    target = Target(str(destination), destination, tags, digest)
    # A release tag that names another digest refuses the promotion before a single blob is copied.
    try:
        decide_changes([target], registry, force, digest_is=SOURCE_IS)
    except TagConflict as exc:
        raise TagConflict(f"{exc} and nothing was copied") from None
    stats = copy_image(registry, source.repository, digest, destination, lambda m: notify("copy", m))
    if source.digest is None:
        now = registry.resolve_digest(source)
        if now != digest:
            raise TagConflict(
                f"{source} moved from {digest} to {now} during the copy; nothing was tagged. "
                f"Promote by digest: {source.repository}@{digest}"
            )
    # Decided again: the destination's tags may have moved while the blobs were copied.
    changes = decide_changes([target], registry, force, digest_is=SOURCE_IS)
    apply_changes(changes, registry, lambda _image, step, message: notify(step, message))
    return Promotion(source, digest, destination, stats, changes)
