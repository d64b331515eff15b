"""Cutting a release: choose the version from git tags (or Conventional Commits), tag, build, publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import semver

from pipeline.conventional import bump_from_commits
from pipeline.errors import UsageError
from pipeline.gitrelease import ReleaseRepo
from pipeline.versioning import Bump, next_prerelease, next_version, parse_version

BumpChoice = Literal["major", "minor", "patch", "auto"]


@dataclass(frozen=True)
class ChosenVersion:
    version: semver.Version
    reason: str

    @property
    def git_tag(self) -> str:
        return f"v{self.version.replace(build=None)}"


def choose_version(repo: ReleaseRepo, bump: BumpChoice | None, explicit: str | None, pre: str | None) -> ChosenVersion:
    if (bump is None) == (explicit is None):
        raise UsageError("give exactly one of --bump major|minor|patch|auto or --version X.Y.Z")
    existing = [t.version for t in repo.version_tags()]
    if explicit is not None:
        version = parse_version(explicit)
        if pre and not version.prerelease:
            return ChosenVersion(next_prerelease(version, pre, existing), f"--version {explicit} --pre {pre}")
        return ChosenVersion(version, f"--version {explicit}")
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


def check_can_tag(repo: ReleaseRepo, chosen: ChosenVersion, allow_dirty: bool) -> bool:
    """Refuse a dirty tree or a version tag on another commit; return True if the tag already exists
    on HEAD (a re-run of the same release)."""
    if not allow_dirty:
        dirty = repo.dirty_files()
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" (+{len(dirty) - 5} more)" if len(dirty) > 5 else "")
            raise UsageError(f"the working tree has uncommitted changes ({shown}); commit or stash them first")
    tagged = repo.existing_tag(chosen.git_tag)
    if tagged is not None and tagged != repo.head:
        raise UsageError(f"git tag {chosen.git_tag} already exists on commit {tagged[:12]}, not HEAD {repo.head[:12]}")
    return tagged is not None
