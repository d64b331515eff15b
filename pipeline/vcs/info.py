"""What the git checkout around the config says: HEAD, branch, origin URL (for tags and OCI labels); where
its top and its hooks directory are. A run's read (read_git_info) is plain `git` calls, side by side
(vcs.worktree's runner): GitPython, ~35 ms to import, loads only for the repository and hooks look-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.common.urls import strip_credentials
from pipeline.errors import EnvironmentProblem, UsageError
from pipeline.vcs.worktree import HEAD_COMMAND, GitCall, WorkTree

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
    """GitInfo for the repository containing `path`, or None outside git, in a bare repository, or before
    the first commit. A repository git refuses to read (safe.directory) is an EnvironmentProblem."""
    if not path.is_dir():
        return None
    try:
        calls = [GitCall(path, *command) for command in _INFO_COMMANDS]
    except EnvironmentProblem:  # no git binary: an error only where there is a repository to read
        if any((directory / ".git").exists() for directory in (path.absolute(), *path.absolute().parents)):
            raise EnvironmentProblem("git is not installed, but the config lives in a git repository") from None
        return None
    tree = WorkTree.read(calls[0], path)
    (_, committed, _), (_, earlier, _), (has_origin, urls, _), (_, staged, _), (_, changed, _) = (
        call.done() for call in calls[1:]
    )
    if tree is None or tree.head is None:
        return None
    remote_url = next(iter(urls.splitlines()), None) if has_origin == 0 else None
    try:
        committed_at = datetime.fromisoformat(committed.strip())
    except ValueError:
        found = committed.strip()[:200]
        raise EnvironmentProblem(f"{tree.root}: git gave no commit time for HEAD: {found!r}") from None
    return GitInfo(
        sha=tree.head,
        branch=tree.branch,
        remote_url=strip_credentials(remote_url) if remote_url else None,  # never a token in a label
        dirty=bool(staged or changed),
        committed_at=committed_at,
        earlier=tuple(earlier.split()[1:]),
        root=tree.root,
    )


# What read_git_info asks, all at once: HEAD, its branch and the top; HEAD's commit time; its first-parent
# ancestors; origin's URL (the one `git push origin` uses: insteadOf applied); the staged and the unstaged
# changes of tracked files (dirty: what GitPython's is_dirty(untracked_files=False) asks). Whatever the user's
# git configuration says: no signature check printed before the time (log.showSignature; GitHub signs its
# merge commits), and the whole tree's changes, not only those below the config's directory (diff.relative).
_INFO_COMMANDS = (
    HEAD_COMMAND,
    ("log", "-1", "--no-show-signature", "--format=%cI", "HEAD"),
    ("rev-list", "--first-parent", f"--max-count={EARLIER_COMMITS + 1}", "HEAD"),
    ("remote", "get-url", "--all", "origin"),
    ("diff", "--cached", "--no-relative", "--abbrev=40", "--full-index", "--raw"),
    ("diff", "--no-relative", "--abbrev=40", "--full-index", "--raw"),
)


@dataclass(frozen=True)
class Repository:
    """A git repository found around a directory: its working tree's top (None for a bare one)."""

    work_tree: Path | None


def find_repository(path: Path) -> Repository | None:
    """The repository containing `path` (searching upwards); None outside one."""
    from pipeline.vcs.loader import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    return Repository(Path(repo.working_tree_dir) if repo.working_tree_dir is not None else None)


def hooks_dir(repo_path: Path) -> Path:
    """The directory git runs the hooks of the repository containing `repo_path` from (core.hooksPath
    honoured)."""
    from pipeline.vcs.loader import git

    try:
        repo = git.Repo(repo_path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{repo_path}: not a git repository") from None
    path = Path(str(repo.git.rev_parse("--git-path", "hooks")))
    return path if path.is_absolute() else Path(repo.git_dir if repo.bare else repo.working_tree_dir or ".") / path
