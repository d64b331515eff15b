"""What the git checkout around the config says: HEAD, branch, origin URL (for tags and OCI labels); where
its top and its hooks directory are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.common.urls import strip_credentials
from pipeline.errors import EnvironmentProblem, UsageError
from pipeline.vcs.loader import git

# How far back a run looks for an earlier build whose layers it may reuse (registry cache sources).
EARLIER_COMMITS = 100


@dataclass(frozen=True)
class GitInfo:
    sha: str
    branch: str | None
    remote_url: str | None
    dirty: bool
    committed_at: datetime
    earlier: tuple[str, ...] = ()  # HEAD's first-parent ancestors, newest first (at most EARLIER_COMMITS)
    root: Path | None = None  # the working tree's top directory

    @property
    def short_sha(self) -> str:
        return self.sha[:12]


def read_git_info(path: Path) -> GitInfo | None:
    """GitInfo for the repository containing `path`, or None outside git (or before the first commit)."""
    try:
        return _read(path)
    except git.GitCommandNotFound:
        raise EnvironmentProblem("git is not installed, but the config lives in a git repository") from None


def _read(path: Path) -> GitInfo | None:
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        commit = repo.head.commit
        sha = commit.hexsha
    except ValueError:
        return None
    branch = None if repo.head.is_detached else repo.active_branch.name
    remote_url = None
    if "origin" in [r.name for r in repo.remotes]:
        urls = list(repo.remotes.origin.urls)
        remote_url = strip_credentials(urls[0]) if urls else None  # never a token in a label
    return GitInfo(
        sha=sha,
        branch=branch,
        remote_url=remote_url,
        dirty=repo.is_dirty(untracked_files=False),
        committed_at=commit.committed_datetime,
        earlier=tuple(str(repo.git.rev_list("--first-parent", f"--max-count={EARLIER_COMMITS + 1}", sha)).split()[1:]),
        root=Path(repo.working_tree_dir) if repo.working_tree_dir else None,
    )


@dataclass(frozen=True)
class Repository:
    """A git repository found around a directory: its working tree's top (None for a bare one)."""

    work_tree: Path | None


def find_repository(path: Path) -> Repository | None:
    """The repository containing `path` (searching upwards); None outside one."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    return Repository(Path(repo.working_tree_dir) if repo.working_tree_dir is not None else None)


def hooks_dir(repo_path: Path) -> Path:
    """The directory git runs the hooks of the repository containing `repo_path` from (core.hooksPath
    honoured)."""
    try:
        repo = git.Repo(repo_path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{repo_path}: not a git repository") from None
    path = Path(str(repo.git.rev_parse("--git-path", "hooks")))
    return path if path.is_absolute() else Path(repo.git_dir if repo.bare else repo.working_tree_dir or ".") / path
