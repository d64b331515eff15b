"""Which external base images a plan's images (and each of their variants) stand on, and what rebuilds
when one moves: the images on it and everything depending on them. Pure apart from reading the
Dockerfiles; nothing is resolved here (`status` asks the registry).

    for use in base_uses(plan):
        print(use.reference, use.platform, use.images, rebuilt_by(plan, use.images))
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pipeline.bases.lock import LockKey
from pipeline.bases.resolve import external_bases, own_repositories, plan_builds
from pipeline.dockerfile.bases import default_platform
from pipeline.graph import dependants_closure
from pipeline.plan import Plan


@dataclass(frozen=True)
class BaseUse:
    """One external base, for one platform (and Windows build), and the images whose builds pull it."""

    reference: str  # as the Dockerfile names it after ARGs (`:latest` written out when it names no tag)
    platform: str
    os_version: str | None
    images: tuple[str, ...]  # image keys, in build order
    # A stage of these images names its own platform (`FROM --platform=$BUILDPLATFORM`): they stand on the
    # whole index the reference points at, not on the platform's child (a separate use of the same key).
    whole: bool = False

    @property
    def key(self) -> LockKey:
        return (self.reference, self.platform, self.os_version)


@dataclass(frozen=True)
class Rebuild:
    """What moving some bases rebuilds: the images standing on them, then the images depending on those."""

    images: tuple[str, ...]  # on a moved base, in build order
    dependants: tuple[str, ...]  # built on those, in build order

    @property
    def all(self) -> tuple[str, ...]:
        return self.images + self.dependants


def base_uses(plan: Plan, own: Collection[str] | None = None) -> list[BaseUse]:
    """Every external base the plan's builds pull, per reference and platform (sorted as the lock is), with
    the images using it. `own`: the repositories that are the run's own (default: the plan's, and what
    it pins). Raises UnresolvedBaseImage for a base the Dockerfile does not name resolvably."""
    own_repos = own_repositories(plan) if own is None else set(own)
    users: dict[tuple[str, str, str | None, bool], list[str]] = {}
    # Each image and variant with its build args as the run finds its bases (`{{ images.X }}` one of its own).
    for view, args in plan_builds(plan):
        platform = view.platform or default_platform()
        for base in external_bases(view, args, own_repos):
            images = users.setdefault((str(base.ref), platform, view.os_version, base.stage_platform), [])
            if view.key not in images:
                images.append(view.key)
    return [
        BaseUse(reference, platform, os_version, tuple(images), whole)
        for (reference, platform, os_version, whole), images in sorted(
            users.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "", item[0][3])
        )
    ]


def rebuilt_by(plan: Plan, images: Iterable[str]) -> Rebuild:
    """What rebuilds when the bases of `images` move: those images, then their dependants in the plan."""
    on_base = set(images)
    graph = {key: tuple(image.depends_on) for key, image in plan.images.items()}
    closure = dependants_closure(graph, on_base & set(graph))
    order = list(plan.images)
    return Rebuild(
        tuple(k for k in order if k in on_base),
        tuple(k for k in order if k in closure and k not in on_base),
    )
