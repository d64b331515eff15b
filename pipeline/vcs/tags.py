"""The git side of a release: version tags, commits since the last one, annotated tags, pushing them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import semver

from pipeline.common.urls import strip_credentials
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

    def push_refusals(self, name: str, remote: str = "origin") -> list[UsageError]:
        """Why `push_tag(name)` would fail, asked of the remote before anything is published: it exists, can
        be reached, does not hold `name` already (another writer's release), and accepts the push (a
        `git push --dry-run`, which authenticates and asks for the tag's update as a real push does, but
        sends nothing). Empty when the push will go through or `name` is there already, as pushed."""
        if remote not in [r.name for r in self.repo.remotes]:
            return [
                UsageError(
                    f"--push-tag: the repository has no remote '{remote}' to push git tag {name} to; "
                    f"add one (git remote add {remote} URL) or release without --push-tag"
                )
            ]
        try:
            listed = str(self.repo.git.ls_remote("--tags", remote, f"refs/tags/{name}", f"refs/tags/{name}^{{}}"))
        except git.GitCommandError as exc:
            return [UsageError(f"--push-tag: cannot reach remote '{remote}': {_reason(exc)}")]
        remote_refs = {ref: sha for sha, _, ref in (line.partition("\t") for line in listed.splitlines())}
        theirs = remote_refs.get(f"refs/tags/{name}")
        if theirs is not None:
            mine = self.existing_tag_object(name)
            if mine == theirs:
                return []  # a re-run: the tag is already there, as pushed by this release
            commit = remote_refs.get(f"refs/tags/{name}^{{}}", theirs)
            return [
                UsageError(
                    f"--push-tag: git tag {name} already exists on remote '{remote}' (on commit {commit[:12]}), "
                    f"{'another tag object than this one' if mine else 'not in this clone'}: another release "
                    f"was cut as {name}; fetch it (git fetch {remote} tag {name}) and look before releasing"
                )
            ]
        # The tag may not exist here yet (it is made after these checks): ask for HEAD under its name.
        source = f"refs/tags/{name}" if self.existing_tag(name) is not None else self.head
        try:
            self.repo.git.push("--dry-run", "--porcelain", remote, f"{source}:refs/tags/{name}")
        except git.GitCommandError as exc:
            return [UsageError(f"--push-tag: remote '{remote}' would not accept git tag {name}: {_reason(exc)}")]
        return []

    def existing_tag_object(self, name: str) -> str | None:
        """What `refs/tags/<name>` holds here (an annotated tag's object, a lightweight tag's commit), or None."""
        for ref in self.repo.tags:
            if ref.name == name:
                return str(ref.object.hexsha)
        return None

    def push_tag(self, name: str, remote: str = "origin") -> None:
        if remote not in [r.name for r in self.repo.remotes]:
            raise PipelineError(f"cannot push tag {name}: the repository has no remote '{remote}'")
        try:
            self.repo.git.push(remote, f"refs/tags/{name}")
        except git.GitCommandError as exc:
            raise PipelineError(f"pushing tag {name} to {remote} failed: {_reason(exc)}") from None


def _reason(exc: git.GitCommandError) -> str:
    """git's own reason, one line: its first `fatal:`/`error:` line or a rejected ref's status, else its last
    line (credentials in a URL it names stripped)."""
    lines = []
    for stream in (exc.stderr, exc.stdout):
        text = str(stream or "").strip().removeprefix("stderr:").removeprefix("stdout:").strip().strip("'")
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith(("fatal:", "error:", "!")) or "rejected]" in line), None)
    return strip_credentials(chosen or (lines[-1] if lines else str(exc))).replace("\t", " ")
