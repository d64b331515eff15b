"""Publishing a run's tags, all or nothing: release tags (immutable), then floating tags by the semver
rules, then extra tags. Every decision is made against the registry's tag list before the first write."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from pipeline.errors import TagConflict
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.versioning import decide_floating

REVISION_LABEL = "org.opencontainers.image.revision"


class Action(enum.StrEnum):
    CREATE = "create"
    MOVE = "move"
    UNCHANGED = "unchanged"
    STAYS = "stays"  # a floating tag the rules keep where it is
    OVERWRITE = "overwrite"  # a release tag replaced under --force


@dataclass(frozen=True)
class TagChange:
    image: str
    repository: str
    tag: str
    kind: str  # release | floating | extra
    action: Action
    digest: str | None  # where the tag will point; None in a dry run before anything is built
    previous: str | None
    reason: str

    @property
    def writes(self) -> bool:
        return self.action in (Action.CREATE, Action.MOVE, Action.OVERWRITE)


Notify = Callable[[str, str, str], None]  # (image, step, message)


def check_release_tags(plan: Plan, registry: RegistryClient, force: bool, notify: Notify) -> None:
    """Before building: refuse a release whose X.Y.Z tag already names a build of another commit."""
    conflicts = []
    for key, image in plan.images.items():
        tag = image.tags.release
        if tag is None:
            continue
        existing = registry.resolve_digest(image.repository.with_tag(tag))
        if existing is None:
            continue
        if force:
            notify(key, "warning", f"{image.repository}:{tag} exists at {existing}; --force will overwrite it")
            continue
        sha = plan.context.git_sha
        if sha is None:
            conflicts.append(
                f"{image.repository}:{tag} already exists at {existing} and outside git this run cannot "
                "prove it rebuilds the same image"
            )
            continue
        revision = registry.image_labels(image.repository.with_digest(existing)).get(REVISION_LABEL)
        if revision and revision != sha:
            conflicts.append(
                f"{image.repository}:{tag} already exists at {existing}, built from commit {revision[:12]}; "
                f"this run builds commit {sha[:12]}"
            )
    if conflicts:
        raise TagConflict(
            "release tags are immutable: "
            + "; ".join(conflicts)
            + " (release a new version, or --force to overwrite); nothing was built or moved"
        )


@dataclass(frozen=True)
class _ImageTags:
    """One image's side of the decision: where it will point and what its repository holds now."""

    key: str
    image: PlannedImage
    digest: str | None
    existing: frozenset[str]

    def change(self, registry: RegistryClient, tag: str, kind: str, reason: str, moves: bool = True) -> TagChange:
        ref = self.image.repository.with_tag(tag)
        previous = registry.resolve_digest(ref) if tag in self.existing else None
        if not moves:
            action = Action.STAYS
        elif previous is None:
            action = Action.CREATE
        elif self.digest is not None and previous == self.digest:
            action = Action.UNCHANGED
        else:
            action = Action.MOVE
        return TagChange(self.key, str(self.image.repository), tag, kind, action, self.digest, previous, reason)


def decide_changes(
    plan: Plan, digests: Mapping[str, str | None], registry: RegistryClient, force: bool
) -> list[TagChange]:
    """Every tag write the run would make, with its reason; raise TagConflict on a release tag that
    names another digest (unless forced). Reads the registry only."""
    changes: list[TagChange] = []
    conflicts: list[str] = []
    for key, image in plan.images.items():
        side = _ImageTags(key, image, digests.get(key), frozenset(registry.list_tags(image.repository)))
        release = image.tags.release
        if release is not None:
            item = side.change(registry, release, "release", "the release tag")
            if item.action == Action.MOVE and force:
                item = replace(
                    item, action=Action.OVERWRITE, reason=f"--force: overwriting the release tag (was {item.previous})"
                )
            elif item.action == Action.MOVE:
                conflicts.append(f"{image.repository}:{release} is {item.previous}, this run built {side.digest}")
            changes.append(item)
        for decision in decide_floating(image.tags, side.existing):
            changes.append(side.change(registry, decision.tag.name, "floating", decision.reason, decision.moves))
        for tag in image.tags.extra:
            changes.append(side.change(registry, tag, "extra", "an extra tag template"))
    if conflicts:
        raise TagConflict(
            "release tags are immutable: "
            + "; ".join(conflicts)
            + " (release a new version, or --force to overwrite); no tag was moved"
        )
    return changes


def apply_changes(changes: list[TagChange], plan: Plan, registry: RegistryClient, notify: Notify) -> None:
    """Release tags for every image first, then floating, then extra tags."""
    for kind in ("release", "floating", "extra"):
        for item in changes:
            if item.kind != kind or not item.writes or item.digest is None:
                continue
            if item.action == Action.OVERWRITE:
                notify(item.image, "warning", f"overwriting release tag {item.repository}:{item.tag}")
            notify(item.image, "tag", f"{item.repository}:{item.tag} ({item.action.value}: {item.reason})")
            registry.tag(plan.images[item.image].repository, item.digest, item.tag)
