"""Finding the image an unchanged dependency last pushed for this line of history."""

from __future__ import annotations

from pipeline.errors import PipelineError
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.versioning import sha_tag


def last_pushed(registry: RegistryClient, image: PlannedImage, history: list[str], branch_tag: str | None) -> str:
    """`repo@digest` of the newest build on `history` (HEAD first) by its sha- tag, else the branch
    tag; never a local image, which may be stale."""
    tags = set(registry.list_tags(image.repository))
    suffix = image.tags.suffix
    for sha in history:
        tag = sha_tag(sha) + suffix
        if tag in tags:
            digest = registry.resolve_digest(image.repository.with_tag(tag))
            if digest:
                return f"{image.repository}@{digest}"
    if branch_tag and branch_tag in tags:
        digest = registry.resolve_digest(image.repository.with_tag(branch_tag))
        if digest:
            return f"{image.repository}@{digest}"
    raise PipelineError(
        f"{image.key} is unchanged but no pushed build of it exists for this line of history "
        f"(no sha-<commit> tag of the last {len(history)} commits in {image.repository}); build it first "
        "(run without --since)"
    )


def narrow_plan(
    plan: Plan, keys: set[str], registry: RegistryClient, history: list[str], fallback_tag: str | None
) -> Plan:
    """The plan cut down to `keys`, every dependency left out pinned to its last pushed digest."""
    pinned = {
        dep: last_pushed(registry, plan.images[dep], history, fallback_tag) for dep in plan.outside_dependencies(keys)
    }
    return plan.subset(keys, pinned)
