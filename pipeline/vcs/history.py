"""A checkout's committed history as `explain` reads it: HEAD's first-parent line, and the files and
ignore files of an earlier commit's tree."""

from __future__ import annotations

from pathlib import Path

from pipeline.vcs.loader import git


class History:
    """The repository around a directory, read at earlier commits."""

    def __init__(self, repo: git.Repo) -> None:
        self._repo = repo

    @property
    def root(self) -> Path:
        """The working tree's top directory, resolved."""
        return Path(str(self._repo.working_tree_dir)).resolve()

    def tree(self, revision: str, prefix: str) -> str | None:
        """`git ls-tree -r -z --full-tree` of `revision` below `prefix` ("" for the top); None when
        git cannot read it (an unknown revision)."""
        try:
            return str(self._repo.git.ls_tree("-r", "-z", "--full-tree", revision, "--", prefix or "."))
        except git.GitCommandError:
            return None

    def file_at(self, revision: str, path: str) -> str | None:
        """The text of `path` (from the top) in `revision`; None when the commit has no such file."""
        try:
            return str(self._repo.git.show(f"{revision}:{path}"))
        except git.GitCommandError:
            return None


def first_parent_history(directory: Path, limit: int = 500) -> tuple[History | None, list[str]]:
    """The repository around `directory` and HEAD's first-parent commits, newest first (at most
    `limit`); (None, []) outside a repository or before its first commit."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        commits = str(repo.git.rev_list(f"--max-count={limit}", "--first-parent", "HEAD")).split()
    except (git.InvalidGitRepositoryError, git.GitCommandError):
        return None, []
    return History(repo), commits
