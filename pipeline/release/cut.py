"""Cutting a release: choose the version from git tags (or Conventional Commits), tag, build, publish."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import semver

from pipeline.cache.inputs import BaseLookup, GitBlobs
from pipeline.cache.predict import Prediction, predict
from pipeline.common.reporting import Reporter
from pipeline.errors import UsageError
from pipeline.plan import Plan
from pipeline.registry.client import RegistryClient
from pipeline.release.conventional import bump_from_commits
from pipeline.release.publish import TagChange, Target, check_release_tags, decide_changes
from pipeline.vcs.tags import ReleaseRepo, VersionTag
from pipeline.versioning import Bump, next_prerelease, next_version, parse_version

BumpChoice = Literal["major", "minor", "patch", "auto"]


@dataclass(frozen=True)
class ChosenVersion:
    version: semver.Version
    reason: str
    rerun: bool = False  # HEAD already carries this version's tag: the run finishes that release

    @property
    def git_tag(self) -> str:
        return f"v{self.version.replace(build=None)}"


def prerelease_label(version: semver.Version) -> str | None:
    """`rc` for X.Y.Z-rc.N, None for a stable version (and for a prerelease --pre would not make)."""
    if not version.prerelease:
        return None
    label, _, number = str(version.prerelease).rpartition(".")
    return label if label and number.isdigit() else str(version.prerelease)


def _rerun(tag: VersionTag, how: str) -> ChosenVersion:
    return ChosenVersion(
        tag.version,
        f"{how}re-run of release {tag.version}: {tag.name} is already on HEAD; only what is unfinished is done",
        rerun=True,
    )


def choose_version(repo: ReleaseRepo, bump: BumpChoice | None, explicit: str | None, pre: str | None) -> ChosenVersion:
    """The version to release. A HEAD that already carries a release of the requested kind (stable, or
    `--pre LABEL`) is that release, so re-running the same command finishes it instead of cutting the next."""
    if (bump is None) == (explicit is None):
        raise UsageError("give exactly one of --bump major|minor|patch|auto or --version X.Y.Z")
    tags = repo.version_tags()
    existing = [t.version for t in tags]
    on_head = [t for t in tags if t.sha == repo.head]  # sorted: the highest last
    if explicit is not None:
        version = parse_version(explicit)
        if pre and not version.prerelease:
            same = [
                t for t in on_head if t.version.finalize_version() == version and prerelease_label(t.version) == pre
            ]
            if same:
                return _rerun(same[-1], f"--version {explicit} --pre {pre}: ")
            return ChosenVersion(next_prerelease(version, pre, existing), f"--version {explicit} --pre {pre}")
        here = next((t for t in on_head if t.version.replace(build=None) == version.replace(build=None)), None)
        if here is not None:
            return ChosenVersion(version, f"--version {explicit}: {_rerun(here, '').reason}", rerun=True)
        return ChosenVersion(version, f"--version {explicit}")
    same_kind = [t for t in on_head if prerelease_label(t.version) == pre]
    if same_kind:
        return _rerun(same_kind[-1], "")
    stable_here = [t for t in on_head if not t.version.prerelease]
    if pre is not None and stable_here:
        # A candidate for the next version must contain something the released commit does not.
        raise UsageError(
            f"HEAD is already released as {stable_here[-1].name}; a prerelease (--pre {pre}) after it would name "
            f"the same commit: commit the next change first, or give the version with --version X.Y.Z-{pre}.N"
        )
    latest = repo.latest_release()
    since = latest.name if latest else "the first commit"
    chosen: Bump
    if bump == "auto":
        found = bump_from_commits(repo.messages_since(latest))
        if found is None:
            raise UsageError(
                f"--bump auto: no feat, fix or breaking commit since {since}; choose --bump patch|minor|major"
            )
        chosen = found
        reason = f"--bump auto: {chosen} from Conventional Commits since {since}"
    else:
        assert bump is not None
        chosen = bump
        reason = f"--bump {chosen} from {latest.name if latest else 'no previous release (0.0.0)'}"
    return ChosenVersion(next_version(latest.version if latest else None, chosen, pre, existing), reason)


def tag_refusals(repo: ReleaseRepo, chosen: ChosenVersion) -> list[UsageError]:
    """Why HEAD cannot be tagged `chosen`, in the order the release checks: a dirty tree, then a version
    tag on another commit. A dry run reports them all; the release stops at the first."""
    refusals = []
    dirty = repo.dirty_files()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" (+{len(dirty) - 5} more)" if len(dirty) > 5 else "")
        refusals.append(UsageError(f"the working tree has uncommitted changes ({shown}); commit or stash them first"))
    tagged = repo.existing_tag(chosen.git_tag)
    if tagged is not None and tagged != repo.head:
        refusals.append(
            UsageError(f"git tag {chosen.git_tag} already exists on commit {tagged[:12]}, not HEAD {repo.head[:12]}")
        )
    return refusals


def check_can_tag(repo: ReleaseRepo, chosen: ChosenVersion) -> bool:
    """Refuse a dirty tree or a version tag on another commit; return True if the tag already exists
    on HEAD (a re-run of the same release)."""
    refusals = tag_refusals(repo, chosen)
    if refusals:
        raise refusals[0]
    return repo.existing_tag(chosen.git_tag) is not None


def check_publishing(
    plan: Plan,
    registry: RegistryClient,
    force: bool,
    use_cache: bool,
    blobs: GitBlobs | None,
    notify: Reporter,
    bases: BaseLookup | None = None,
) -> list[TagChange]:
    """The registry checks a release makes before building, read-only, then the tag changes it would
    make: TagConflict for a release tag that names a build of another commit, RegistryError for a
    registry that cannot be read, exactly as the real run raises them. A release tag that already
    names this commit's build shows as unchanged (a re-run reuses it)."""
    targets = [Target(key, image.repository, image.tags) for key, image in plan.images.items()]
    predictions: dict[str, Prediction] = {}

    def predicted(key: str) -> str | None:  # computed on demand, as the run does
        if not use_cache:
            return None
        if not predictions:
            predictions.update(predict(plan, registry, blobs, bases=bases))
        return predictions[key].digest

    ctx = plan.context
    reusable = check_release_tags(targets, ctx.git_sha, ctx.dirty, registry, force, notify, predicted)
    # The digest each image would publish when the run already knows it (reused, not rebuilt).
    known = {key: reusable.get(key) or (predictions[key].digest if predictions else None) for key in plan.images}
    return decide_changes([replace(t, digest=known[t.key]) for t in targets], registry, force)
