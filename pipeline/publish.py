"""Publishing a run's tags, all or nothing: release tags (immutable), then floating tags by the semver
rules, then extra tags. Every decision is made against the registry's tag list before the first write."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline.errors import TagConflict
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository
from pipeline.versioning import TagSet, decide_floating

REVISION_LABEL = "org.opencontainers.image.revision"


class Action(enum.StrEnum):
    CREATE = "create"
    MOVE = "move"
    UNCHANGED = "unchanged"
    STAYS = "stays"  # a floating tag the rules keep where it is
    OVERWRITE = "overwrite"  # a release tag replaced under --force
    EXISTS = "exists"  # dry run: the release tag exists; unchanged if the build is identical


@dataclass(frozen=True)
class Target:
    """One image to publish: its repository, its tag set and (after the push) its digest."""

    key: str
    repository: Repository
    tags: TagSet
    digest: str | None = None


@dataclass(frozen=True)
class TagChange:
    image: str
    repository: Repository
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


def check_release_tags(
    targets: list[Target],
    git_sha: str | None,
    dirty: bool,
    registry: RegistryClient,
    force: bool,
    notify: Notify,
    predicted: Callable[[str], str | None] = lambda key: None,
) -> dict[str, str]:
    """Before building: refuse a release whose X.Y.Z tag already names a build of another commit.
    Returns the images whose X.Y.Z already names a build of this very commit (clean tree): re-running
    the release reuses those digests instead of rebuilding, so a fresh CI runner can re-run it too."""
    conflicts = []
    reusable: dict[str, str] = {}
    for target in targets:
        tag = target.tags.release
        if tag is None:
            continue
        existing = registry.resolve_digest(target.repository.with_tag(tag))
        if existing is None:
            continue
        if force:
            notify(target.key, "warning", f"{target.repository}:{tag} exists at {existing}; --force will overwrite it")
            continue
        if predicted(target.key) == existing:
            continue  # the input cache will reuse exactly that image: a re-run, not a conflict
        if git_sha is None:
            conflicts.append(
                f"{target.repository}:{tag} already exists at {existing} and outside git this run cannot "
                "prove it rebuilds the same image"
            )
            continue
        revision = registry.image_labels(target.repository.with_digest(existing)).get(REVISION_LABEL)
        if revision == git_sha and not dirty:
            reusable[target.key] = existing
        elif revision is None:
            conflicts.append(
                f"{target.repository}:{tag} already exists at {existing} and has no {REVISION_LABEL} label "
                "to show which commit it was built from"
            )
        elif revision != git_sha:
            conflicts.append(
                f"{target.repository}:{tag} already exists at {existing}, built from commit {revision[:12]}; "
                f"this run builds commit {git_sha[:12]}"
            )
    if conflicts:
        raise TagConflict(
            "release tags are immutable: "
            + "; ".join(conflicts)
            + " (release a new version, or --force to overwrite); nothing was built or moved"
        )
    return reusable


def _change(
    registry: RegistryClient,
    target: Target,
    existing: frozenset[str],
    tag: str,
    kind: str,
    reason: str,
    moves: bool = True,
) -> TagChange:
    previous = registry.resolve_digest(target.repository.with_tag(tag)) if tag in existing else None
    if not moves:
        action = Action.STAYS
    elif previous is None:
        action = Action.CREATE
    elif target.digest is None:
        action = Action.EXISTS if kind == "release" else Action.MOVE
    elif previous == target.digest:
        action = Action.UNCHANGED
    else:
        action = Action.MOVE
    return TagChange(target.key, target.repository, tag, kind, action, target.digest, previous, reason)


def decide_changes(
    targets: list[Target], registry: RegistryClient, force: bool, digest_is: str = "this run built"
) -> list[TagChange]:
    """Every tag write publishing would make, with its reason; raise TagConflict on a release tag that
    names another digest (unless forced). Reads the registry only; with no digests, it is a dry run.
    `digest_is` says in a conflict where the target digest comes from ("the source is" for promote)."""
    changes: list[TagChange] = []
    conflicts: list[str] = []
    for target in targets:
        existing = frozenset(registry.list_tags(target.repository))
        release = target.tags.release
        if release is not None:
            item = _change(registry, target, existing, release, "release", "the release tag")
            if item.action == Action.MOVE and force:
                item = replace(
                    item, action=Action.OVERWRITE, reason=f"--force: overwriting the release tag (was {item.previous})"
                )
            elif item.action == Action.MOVE:
                conflicts.append(f"{target.repository}:{release} is {item.previous}, {digest_is} {target.digest}")
            changes.append(item)
        for decision in decide_floating(target.tags, existing):
            changes.append(
                _change(registry, target, existing, decision.tag.name, "floating", decision.reason, decision.moves)
            )
        for tag in target.tags.extra:
            changes.append(_change(registry, target, existing, tag, "extra", "an extra tag template"))
    if conflicts:
        raise TagConflict(
            "release tags are immutable: "
            + "; ".join(conflicts)
            + " (release a new version, or --force to overwrite); no tag was moved"
        )
    return changes


def apply_changes(changes: list[TagChange], registry: RegistryClient, notify: Notify) -> None:
    """Release tags for every image first, then floating, then extra tags."""
    for kind in ("release", "floating", "extra"):
        for item in changes:
            if item.kind != kind or not item.writes or item.digest is None:
                continue
            if item.action == Action.OVERWRITE:
                notify(item.image, "warning", f"overwriting release tag {item.repository}:{item.tag}")
            notify(item.image, "tag", f"{item.repository}:{item.tag} ({item.action.value}: {item.reason})")
            registry.tag(item.repository, item.digest, item.tag)
