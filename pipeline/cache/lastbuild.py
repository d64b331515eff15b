"""The last build of an image on a line of history (its newest `sha-<commit>` tag), shared by `explain`
and by `run --since`, which pins unchanged dependencies to it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.cache.scope import Vouch
from pipeline.common.reporting import SILENT, Reporter
from pipeline.errors import PipelineError
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.protocol import Registry
from pipeline.versioning import sha_tag


@dataclass(frozen=True)
class LastBuild:
    """A pushed build found by `last_build`: the commit whose sha- tag named it (None when only the
    fallback tag did), that tag, and the digest it points at."""

    commit: str | None
    tag: str
    digest: str


def last_build(
    registry: Registry, image: PlannedImage, history: list[str], fallback_tag: str | None = None
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
    plan: Plan,
    keys: set[str],
    registry: RegistryClient,
    history: list[str],
    fallback_tag: str | None,
    vouch: Vouch | None = None,
    reporter: Reporter = SILENT,
) -> Plan:
    """The plan cut down to `keys`, every dependency left out pinned to its last pushed digest. Its
    pipeline's `reuse:` rule decides what may be pinned: `any`, whatever the tag names; `trusted`, only a
    digest `vouch` accepts (its pipeline's signature); `never`, nothing. A dependency that may not be
    pinned is built in this run (added to the plan, with its own dependencies), and `reporter` says why."""
    keys = set(keys)
    pinned: dict[str, str] = {}
    outside = plan.outside_dependencies(keys)
    while outside:
        for dep in sorted(outside):
            image = plan.images[dep]
            reference, problem = _pin(registry, image, history, fallback_tag, vouch)
            if reference is None:
                reporter.say(f"{dep}: not pinned: {problem}; building {dep}")
                keys.add(dep)
            else:
                pinned[dep] = reference
        pinned = {dep: ref for dep, ref in pinned.items() if dep not in keys}
        outside = plan.outside_dependencies(keys) - set(pinned)
    return plan.subset(keys, pinned)


def _pin(
    registry: RegistryClient, image: PlannedImage, history: list[str], fallback_tag: str | None, vouch: Vouch | None
) -> tuple[str | None, str | None]:
    """(the `repository@digest` to pin `image` to, None), or (None, why it may not be pinned)."""
    if image.reuse == "never":
        return None, f"pipeline {image.pipeline} has reuse: never"
    reference = _pinned(registry, image, history, fallback_tag)
    if image.reuse != "trusted":
        return reference, None
    digest = reference.rsplit("@", 1)[1]
    # No input digest is known for a pinned build: its signature (the pipeline's signer) is what vouches.
    problem = vouch(image, digest, None) if vouch is not None else f"{digest} cannot be verified (no signer)"
    return (reference, None) if problem is None else (None, problem)


def _pinned(registry: RegistryClient, image: PlannedImage, history: list[str], fallback_tag: str | None) -> str:
    found = last_build(registry, image, history, fallback_tag)
    if found is None:
        raise PipelineError(
            f"{image.key} is unchanged but no pushed build of it exists for this line of history "
            f"(no sha-<commit> tag of the last {len(history)} commits in {image.repository}); build it first "
            "(run without --since)"
        )
    return f"{image.repository}@{found.digest}"
