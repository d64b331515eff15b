"""The last build of an image on a line of history (its newest `sha-<commit>` tag), shared by `explain`
and by `run --since`, which pins unchanged dependencies to it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.versioning import sha_tag


@dataclass(frozen=True)
class LastBuild:
    """A pushed build found by `last_build`: the commit whose sha- tag named it (None when only the
    fallback tag did), that tag, and the digest it points at."""

    commit: str | None
    tag: str
    digest: str


def last_build(
    registry: RegistryClient, image: PlannedImage, history: list[str], fallback_tag: str | None = None
) -> LastBuild | None:
    """The newest build on `history` (HEAD first) by its sha- tag, else `fallback_tag` (a branch tag,
    taken as is), else None. Only the registry counts: a local image may be stale. Registry failures
    propagate."""
    tags = set(registry.list_tags(image.repository))
    for sha in history:
        tag = sha_tag(sha) + image.tags.suffix
        if tag in tags:
            digest = registry.resolve_digest(image.repository.with_tag(tag))
            if digest:
                return LastBuild(sha, tag, digest)
    if fallback_tag and fallback_tag in tags:
        digest = registry.resolve_digest(image.repository.with_tag(fallback_tag))
        if digest:
            return LastBuild(None, fallback_tag, digest)
    return None


def narrow_plan(
    plan: Plan, keys: set[str], registry: RegistryClient, history: list[str], fallback_tag: str | None
) -> Plan:
    """The plan cut down to `keys`, every dependency left out pinned to its last pushed digest."""
    pinned = {
        dep: _pinned(registry, plan.images[dep], history, fallback_tag) for dep in plan.outside_dependencies(keys)
    }
    return plan.subset(keys, pinned)


def _pinned(registry: RegistryClient, image: PlannedImage, history: list[str], fallback_tag: str | None) -> str:
    found = last_build(registry, image, history, fallback_tag)
    if found is None:
        raise PipelineError(
            f"{image.key} is unchanged but no pushed build of it exists for this line of history "
            f"(no sha-<commit> tag of the last {len(history)} commits in {image.repository}); build it first "
            "(run without --since)"
        )
    return f"{image.repository}@{found.digest}"
