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
from pipeline.bases.resolve import external_bases, own_repositories
from pipeline.dockerfile.bases import default_platform
from pipeline.graph import dependants_closure
from pipeline.plan import Plan, PlannedImage, render_build_args

# What `{{ images.X }}` is rendered as while looking for bases: a reference into the run's own repository
# (so it is left out as own, as the run leaves out the digest it built), whatever X's digest turns out to be.
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class BaseUse:
    """One external base, for one platform (and Windows build), and the images whose builds pull it."""

    reference: str  # as the Dockerfile names it after ARGs (`:latest` written out when it names no tag)
    platform: str
    os_version: str | None
    images: tuple[str, ...]  # image keys, in build order

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


def views_of(image: PlannedImage) -> list[PlannedImage]:
    """What is built of an image: each variant's view, or the image itself."""
    return [image.variant_view(variant) for variant in image.variants] or [image]


def placeholder_args(plan: Plan, view: PlannedImage) -> dict[str, str]:
    """`view`'s build args as the run renders them, each of the run's own images a placeholder reference."""
    references = {dep: f"{plan.images[dep].repository}@{PLACEHOLDER_DIGEST}" for dep in view.depends_on}
    return render_build_args(plan, view, references)


def base_uses(plan: Plan, own: Collection[str] | None = None) -> list[BaseUse]:
    """Every external base the plan's builds pull, per reference and platform (sorted as the lock is), with
    the images using it. `own`: the repositories that are the run's own (default: the plan's, and what
    it pins). Raises UnresolvedBaseImage for a base the Dockerfile does not name resolvably."""
    own_repos = own_repositories(plan) if own is None else set(own)
    users: dict[LockKey, list[str]] = {}
    for key, image in plan.images.items():
        for view in views_of(image):
            platform = view.platform or default_platform()
            for base in external_bases(view, placeholder_args(plan, view), own_repos):
                images = users.setdefault((str(base.ref), platform, view.os_version), [])
                if key not in images:
                    images.append(key)
    return [
        BaseUse(reference, platform, os_version, tuple(images))
        for (reference, platform, os_version), images in sorted(
            users.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")
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
