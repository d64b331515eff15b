"""Publishing a run's tags, all or nothing: release tags (immutable), then floating tags by the semver
rules, then extra tags. Every decision is made against the registry's tag list before the first write."""

from __future__ import annotations

import enum
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import semver

from pipeline.common.reporting import Reporter
from pipeline.errors import PipelineError, PublishFailed, RegistryError, TagConflict
from pipeline.plan import REVISION_LABEL
from pipeline.registry.client import Manifest, RegistryClient
from pipeline.registry.reference import Repository, parse_repository
from pipeline.release.journal import Journal, JournalEntry, remove_journal, write_journal
from pipeline.versioning import TagSet, decide_floating, versions_in

T = TypeVar("T")
R = TypeVar("R")


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


def check_release_tags(
    targets: list[Target],
    git_sha: str | None,
    dirty: bool,
    registry: RegistryClient,
    force: bool,
    notify: Reporter,
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
            notify.step(
                target.key, "warning", f"{target.repository}:{tag} exists at {existing}; --force will overwrite it"
            )
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


PUBLISH_CONCURRENCY = 16  # tag writes in flight at once: a partial release is visible for one round trip
JournalDir = Callable[[TagChange], Path]  # where the journal of a change's pipeline lives


def _concurrently(items: list[T], work: Callable[[T], R]) -> list[tuple[T, R | BaseException]]:
    """`work` on every item, PUBLISH_CONCURRENCY at a time; each item's result or its exception."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(PUBLISH_CONCURRENCY, len(items)), thread_name_prefix="tag") as pool:
        futures = [(item, pool.submit(work, item)) for item in items]
        outcomes: list[tuple[T, R | BaseException]] = []
        for item, future in futures:
            try:
                outcomes.append((item, future.result()))
            except Exception as exc:  # noqa: BLE001 - collected and reported with the tag it belongs to
                outcomes.append((item, exc))
        return outcomes


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


def _target_changes(registry: RegistryClient, target: Target, force: bool, digest_is: str) -> list[TagChange | str]:
    """One target's tag changes in publishing order, and its conflict (a string) after its release tag."""
    tags = target.tags
    if tags.release is None and not tags.floating and not tags.extra:
        return []  # nothing to decide (a run of a commit without a version): no need to list its tags
    existing = frozenset(registry.list_tags(target.repository))
    found: list[TagChange | str] = []
    if tags.release is not None:
        item = _change(registry, target, existing, tags.release, "release", "the release tag")
        if item.action == Action.MOVE and force:
            item = replace(
                item, action=Action.OVERWRITE, reason=f"--force: overwriting the release tag (was {item.previous})"
            )
        elif item.action == Action.MOVE:
            found.append(f"{target.repository}:{tags.release} is {item.previous}, {digest_is} {target.digest}")
        found.append(item)
    for decision in decide_floating(tags, existing):
        name, reason = decision.tag.name, decision.reason
        found.append(_change(registry, target, existing, name, "floating", reason, decision.moves))
    for tag in tags.extra:
        why = "the newest build (no version, outside git)" if tag == f"latest{tags.suffix}" else None
        found.append(_change(registry, target, existing, tag, "extra", why or "an extra tag template"))
    return found


def decide_changes(
    targets: list[Target], registry: RegistryClient, force: bool, digest_is: str = "this run built"
) -> list[TagChange]:
    """Every tag write publishing would make, with its reason; raise TagConflict on a release tag that
    names another digest (unless forced). Reads the registry only; with no digests, it is a dry run.
    `digest_is` says in a conflict where the target digest comes from ("the source is" for promote).
    The targets are read together (one round trip each, not one after another); the answer keeps their order."""
    changes: list[TagChange] = []
    conflicts: list[str] = []
    for _target, outcome in _concurrently(targets, lambda t: _target_changes(registry, t, force, digest_is)):
        if isinstance(outcome, BaseException):
            raise outcome
        for found in outcome:
            if isinstance(found, str):
                conflicts.append(found)
            else:
                changes.append(found)
    if conflicts:
        raise TagConflict(
            "release tags are immutable: "
            + "; ".join(conflicts)
            + " (release a new version, or --force to overwrite); no tag was moved"
        )
    return changes


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PipelineError) else f"{type(exc).__name__}: {exc}"


def _manifests(registry: RegistryClient, writes: list[TagChange]) -> dict[tuple[str, str], Manifest]:
    """Each digest's manifest, read before the first write so that a write is one PUT."""
    wanted = sorted({(str(c.repository), str(c.digest)) for c in writes})
    by_key = {(str(c.repository), str(c.digest)): c for c in writes}
    fetched = _concurrently(
        wanted, lambda key: registry.get_manifest(by_key[key].repository.with_digest(str(by_key[key].digest)))
    )
    found: dict[tuple[str, str], Manifest] = {}
    for key, outcome in fetched:
        if isinstance(outcome, BaseException):
            raise PublishFailed(f"publishing failed before any tag moved: {_describe(outcome)}")
        found[key] = outcome
    return found


def apply_changes(
    changes: list[TagChange],
    registry: RegistryClient,
    notify: Reporter,
    journal_dir: JournalDir | None = None,
    what: str = "",
) -> None:
    """Write every tag change at once (bounded), after recording them in the journal (one per pipeline,
    via `journal_dir`). On any failure, move back what this run moved and raise PublishFailed naming the
    tags that could not be restored; their journal stays, so the next run completes the release."""
    writes = [c for c in changes if c.writes and c.digest is not None]
    if not writes:
        return
    manifests = _manifests(registry, writes)
    journals: list[Path] = []
    if journal_dir is not None:
        grouped: dict[Path, list[JournalEntry]] = {}
        for c in writes:
            grouped.setdefault(journal_dir(c), []).append(
                JournalEntry(c.image, str(c.repository), c.tag, c.kind, str(c.digest), c.previous)
            )
        journals = [write_journal(directory, entries, what) for directory, entries in grouped.items()]
    for item in writes:
        if item.action == Action.OVERWRITE:
            notify.step(item.image, "warning", f"overwriting release tag {item.repository}:{item.tag}")
        notify.step(item.image, "tag", f"{item.repository}:{item.tag} ({item.action.value}: {item.reason})")

    def put(item: TagChange) -> None:
        manifest = manifests[(str(item.repository), str(item.digest))]
        stored = registry.put_manifest(item.repository, item.tag, manifest)
        if stored != item.digest:
            raise RegistryError(
                f"{item.repository}:{item.tag}: registry stored digest {stored}, expected {item.digest}"
            )

    # Images first, then indexes: an index's PUT reads its children's links in the registry, and Docker
    # Distribution's filesystem storage rewrites those links (not atomically) when a child is tagged at
    # the same moment (per-variant tags), answering DIGEST_INVALID / MANIFEST_BLOB_UNKNOWN.
    indexes = [c for c in writes if manifests[(str(c.repository), str(c.digest))].is_index]
    images = [c for c in writes if c not in indexes]
    failed = [(c, o) for c, o in _concurrently(images, put) if isinstance(o, BaseException)]
    if not failed:
        failed = [(c, o) for c, o in _concurrently(indexes, put) if isinstance(o, BaseException)]
    if not failed:
        for path in journals:
            remove_journal(path)
        return
    first, error = failed[0]
    reason = f"{first.repository}:{first.tag}: {_describe(error)}"
    unrestored = rollback(writes, registry, notify)
    if not unrestored:
        for path in journals:
            remove_journal(path)
        raise PublishFailed(
            f"publishing failed ({reason}); every tag this run had moved was moved back, so no tag of this "
            "release remains; run the same command again"
        )
    where = (
        f"; the journal {', '.join(map(str, journals))} stays and the next run completes this release"
        if journals
        else ""
    )
    raise PublishFailed(
        f"publishing failed ({reason}); moved back what the registry allows, but could not restore: "
        + ", ".join(unrestored)
        + where
    )


def rollback(writes: list[TagChange], registry: RegistryClient, notify: Reporter) -> list[str]:
    """Point every tag of `writes` back where it was before this run (a created tag is deleted where
    the registry can delete tags). Returns `repo:tag (why)` for each tag that could not be restored."""

    def restore(item: TagChange) -> str | None:
        name = f"{item.repository}:{item.tag}"
        try:
            current = registry.resolve_digest(item.repository.with_tag(item.tag))
            if current == item.previous:
                return None  # this write never landed
            if item.previous is not None:
                registry.tag(item.repository, item.previous, item.tag)
                notify.step(item.image, "rollback", f"{name} moved back to {item.previous}")
                return None
            if registry.delete_tag(item.repository, item.tag):
                notify.step(item.image, "rollback", f"{name} removed (this run had created it)")
                return None
            return f"{name} (created at {current}; the registry cannot delete a tag)"
        except PipelineError as exc:
            return f"{name} ({exc})"

    return [o for _, o in _concurrently(writes, restore) if isinstance(o, str)]


@dataclass(frozen=True)
class Completion:
    written: int
    already: int
    skipped: list[str]  # tags someone else moved since: left as they are


def complete_journal(journal: Journal, registry: RegistryClient, notify: Reporter) -> Completion:
    """Roll an interrupted publish forward: write each recorded change whose tag is still where the
    interrupted run found it (or absent), leave tags that moved elsewhere since, then drop the journal.
    Raise (keeping the journal) if a write fails."""

    def finish(entry: JournalEntry) -> str:
        repository = parse_repository(entry.repository)
        current = registry.resolve_digest(repository.with_tag(entry.tag))
        if current == entry.digest:
            return "already"
        if current != entry.previous:
            return f"{entry.repository}:{entry.tag} (now {current}, moved by someone else since)"
        registry.tag(repository, entry.digest, entry.tag)
        notify.say(
            f"{entry.image}: {entry.repository}:{entry.tag} -> {entry.digest} (completing the interrupted publish)"
        )
        return "written"

    outcomes = _concurrently(list(journal.entries), finish)
    errors = [f"{e.repository}:{e.tag}: {_describe(o)}" for e, o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise PublishFailed(
            f"completing the interrupted publish recorded in {journal.path} failed ({errors[0]}); "
            "it stays and the next run tries again"
        )
    results = [o for _, o in outcomes if isinstance(o, str)]
    remove_journal(journal.path)
    return Completion(
        written=results.count("written"),
        already=results.count("already"),
        skipped=[r for r in results if r not in ("written", "already")],
    )


class RaceLost(TagConflict):
    """A tag this run wrote reads back as something else: another runner wrote it meanwhile."""


Winner = Callable[[Repository, str], str]  # (repository, digest found) -> who put it there


Released = Callable[[Repository, semver.Version], bool]  # (repository, version) -> published by a runner?


def settle_floating(
    changes: list[TagChange],
    targets: list[Target],
    registry: RegistryClient,
    notify: Reporter,
    released: Released | None = None,
) -> list[TagChange]:
    """After writing: each floating tag of `targets` on the highest version present now (another runner may
    have published a higher version, or taken this version, meanwhile). Moves what is not, and returns
    `changes` with each floating change as it ended. With `released` (a git remote's claims), a highest
    version it does not vouch for (a tag pushed by hand, or planted) attracts nothing: the floating tag is
    left where it is, with a warning."""

    def settle(target: Target) -> list[tuple[str, str, str]]:
        """(floating tag, the highest version's tag, its digest) for each floating tag of `target`."""
        version = target.tags.version
        if version is None or not target.tags.floating:
            return []
        existing = registry.list_tags(target.repository)
        stable = {t: v for t, v in versions_in(existing, target.tags.suffix).items() if not v.prerelease}
        ended = []
        for candidate in target.tags.floating:
            peers = {
                t: v
                for t, v in stable.items()
                if candidate.kind == "latest"
                or (candidate.kind == "major" and v.major == version.major)
                or (candidate.kind == "minor" and (v.major, v.minor) == (version.major, version.minor))
            }
            if not peers:
                continue
            highest = max(peers, key=lambda t: peers[t])
            if (
                released is not None
                and peers[highest] != version.replace(build=None)
                and not released(target.repository, peers[highest])
            ):
                notify.step(
                    target.key,
                    "warning",
                    f"{target.repository}:{candidate.name} not moved to {highest}: no runner released that version "
                    "(its claim on the git remote is not done); left as it is",
                )
                continue
            owner = registry.resolve_digest(target.repository.with_tag(highest))
            if owner is None:
                continue
            if registry.resolve_digest(target.repository.with_tag(candidate.name)) != owner:
                registry.tag(target.repository, owner, candidate.name)
                notify.step(target.key, "repair", f"{target.repository}:{candidate.name} -> {highest} ({owner})")
            ended.append((candidate.name, highest, owner))
        return ended

    settled = list(changes)
    for target, outcome in _concurrently(targets, settle):
        if isinstance(outcome, BaseException):
            raise PublishFailed(f"checking the floating tags after publishing failed: {_describe(outcome)}")
        for name, highest, owner in outcome:
            for i, change in enumerate(settled):
                same = (change.image, change.tag) == (target.key, name)
                if same and change.digest != owner and change.action != Action.STAYS:
                    settled[i] = replace(
                        change,
                        action=Action.STAYS,
                        digest=owner,
                        reason=f"{highest} is the highest version now (published meanwhile by another run)",
                    )
    return settled


def read_back(changes: list[TagChange], registry: RegistryClient, winner: Winner | None = None) -> None:
    """Read every tag the report says this run points at its digest (written or unchanged) and raise
    RaceLost naming where it points instead (and who put it there) on any difference."""
    claimed = [c for c in changes if c.digest is not None and c.action != Action.STAYS]

    def check(change: TagChange) -> str | None:
        now = registry.resolve_digest(change.repository.with_tag(change.tag))
        if now == change.digest:
            return None
        who = winner(change.repository, now) if winner is not None and now is not None else ""
        return f"{change.repository}:{change.tag} is {now}{who}, not {change.digest} as this run wrote"

    lost = []
    for _change, outcome in _concurrently(claimed, check):
        if isinstance(outcome, BaseException):
            raise PublishFailed(f"reading back the published tags failed: {_describe(outcome)}")
        if outcome is not None:
            lost.append(outcome)
    if lost:
        raise RaceLost(
            "lost a race with another runner: " + "; ".join(lost) + " (the registry's floating tags were set on the "
            "highest version present; this release is not what the registry shows)"
        )


def revision_of(registry: RegistryClient) -> Winner:
    """Who put a digest there, as far as its labels tell: ` (built from commit X)`."""

    def winner(repository: Repository, digest: str) -> str:
        try:
            revision = registry.image_labels(repository.with_digest(digest)).get(REVISION_LABEL)
        except PipelineError:
            return ""
        return f" (built from commit {revision[:12]})" if revision else ""

    return winner


def verify_published(
    changes: list[TagChange],
    targets: list[Target],
    registry: RegistryClient,
    notify: Reporter,
    winner: Winner | None = None,
    guard: Callable[[str], None] | None = None,
    released: Released | None = None,
) -> list[TagChange]:
    """After `apply_changes`: settle the floating tags and read every tag back (RaceLost on a difference).
    If the registry cannot be read to check, move back what this run wrote, as a failed write does: a run
    that cannot show its release is in place does not leave it half-checked. `guard(what)` is called
    before each step (raises when the run's publishing lease is lost)."""
    try:
        if guard is not None:
            guard("settling the floating tags")
        settled = settle_floating(changes, targets, registry, notify, released)
        if guard is not None:
            guard("reading the tags back")
        read_back(settled, registry, winner)
    except RaceLost:
        raise
    except PublishFailed as exc:
        unrestored = rollback([c for c in changes if c.writes and c.digest is not None], registry, notify)
        if unrestored:
            raise PublishFailed(
                f"{exc}; moved back what the registry allows, but could not restore: " + ", ".join(unrestored)
            ) from None
        raise PublishFailed(f"{exc}; every tag this run had moved was moved back; run the same command again") from None
    return settled
