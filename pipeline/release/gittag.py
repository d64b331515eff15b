"""The git side of a release: version tags, commits since the last one, annotated tags, pushing them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import semver

from pipeline.errors import EnvironmentProblem, PipelineError, UsageError
from pipeline.vcs.loader import git

_VERSION_TAG = re.compile(r"^v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")


@dataclass(frozen=True)
class VersionTag:
    name: str
    version: semver.Version
    sha: str


class ReleaseRepo:
    """The git repository a release is cut from."""

    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UsageError(f"{path}: not inside a git repository; releases are cut from git") from None
        except git.GitCommandNotFound:
            raise EnvironmentProblem("git is not installed; releases are cut from git") from None
        try:
            self.head = self.repo.head.commit.hexsha
        except ValueError:
            raise UsageError(f"{path}: the git repository has no commits yet") from None

    def dirty_files(self) -> list[str]:
        diffs = [*self.repo.index.diff(None), *self.repo.index.diff("HEAD")]
        changed = {str(d.a_path or d.b_path) for d in diffs}
        return sorted(changed | {str(p) for p in self.repo.untracked_files})

    def version_tags(self, reachable_only: bool = False) -> list[VersionTag]:
        """`vX.Y.Z[-pre]` tags; with `reachable_only`, those on HEAD's history (a maintenance branch
        must not bump from a newer line's release)."""
        merged = set(self.repo.git.tag("--merged", "HEAD").split()) if reachable_only else None
        tags = []
        for ref in self.repo.tags:
            if merged is not None and ref.name not in merged:
                continue
            match = _VERSION_TAG.match(ref.name)
            if match:
                try:
                    tags.append(VersionTag(ref.name, semver.Version.parse(match.group(1)), ref.commit.hexsha))
                except ValueError:
                    continue
        return sorted(tags, key=lambda t: t.version)

    def latest_release(self) -> VersionTag | None:
        """The highest stable `vX.Y.Z` tag."""
        stable = [t for t in self.version_tags(reachable_only=True) if not t.version.prerelease]
        return stable[-1] if stable else None

    def messages_since(self, tag: VersionTag | None) -> list[str]:
        rev = f"{tag.name}..HEAD" if tag else "HEAD"
        return [str(c.message) for c in self.repo.iter_commits(rev)]

    def existing_tag(self, name: str) -> str | None:
        """The commit a tag points at, or None."""
        for ref in self.repo.tags:
            if ref.name == name:
                return str(ref.commit.hexsha)
        return None

    def create_tag(self, name: str, message: str) -> None:
        self.repo.create_tag(name, ref=self.head, message=message)

    def delete_tag(self, name: str) -> None:
        self.repo.delete_tag(self.repo.tags[name])

    def push_tag(self, name: str, remote: str = "origin") -> None:
        if remote not in [r.name for r in self.repo.remotes]:
            raise PipelineError(f"cannot push tag {name}: the repository has no remote '{remote}'")
        try:
            self.repo.git.push(remote, f"refs/tags/{name}")
        except git.GitCommandError as exc:
            detail = (exc.stderr or "").strip().splitlines()
            raise PipelineError(f"pushing tag {name} to {remote} failed: {detail[-1] if detail else exc}") from None
