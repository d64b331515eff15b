"""The repository triggers build from: a local path (bare or not) or a URL mirrored into a cache,
with throwaway checkouts (git worktrees) of exact commits."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.common.urls import strip_credentials
from pipeline.errors import PipelineError, SourceUnavailable, UsageError
from pipeline.vcs import ZERO_SHA
from pipeline.vcs.loader import git


class GitSource:
    def __init__(self, repo: str, cache_dir: Path) -> None:
        self.spec = repo
        self.name = strip_credentials(repo)  # what messages say: a URL's token stays out of logs
        local = Path(repo)
        try:
            if local.exists():
                self.repo = git.Repo(local)
                self.mirrored = False
            else:
                mirror = cache_dir / (hashlib.sha256(repo.encode()).hexdigest()[:16] + ".git")
                if not mirror.exists():
                    mirror.parent.mkdir(parents=True, exist_ok=True)
                    git.Repo.clone_from(repo, mirror, bare=True)
                self.repo = git.Repo(mirror)
                self.mirrored = True
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UsageError(f"{self.name}: not a git repository") from None
        except git.GitCommandError as exc:
            raise SourceUnavailable(f"{self.name}: cannot clone: {_reason(exc)}") from None

    def fetch(self) -> None:
        """Bring the mirror up to date (a local repository is read as it is)."""
        if not self.mirrored:
            return
        try:
            self.repo.git.fetch("--prune", "--tags", self.spec, "+refs/heads/*:refs/heads/*")
        except git.GitCommandError as exc:
            raise SourceUnavailable(f"{self.name}: fetch failed: {_reason(exc)}") from None

    def resolve(self, rev: str) -> str | None:
        if rev.startswith("-"):
            return None  # not a revision but one of git's options
        try:
            return str(self.repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}"))
        except git.GitCommandError:
            return None

    def contains(self, tips: Collection[str], commit: str) -> bool | None:
        """`commit` is one of `tips` or an ancestor of one; None when `commit` is not in the repository.

        One `rev-list` for any number of tips (read from stdin, so thousands fit); tips it does not
        know are left out.
        """
        if self.resolve(commit) is None:
            return None
        if not tips:
            return False
        revs = "".join([f"{commit}\n", *(f"^{tip}\n" for tip in tips)])
        argv = ["git", "--git-dir", self.repo.git_dir, "rev-list", "--max-count=1", "--ignore-missing", "--stdin"]
        try:
            done = subprocess.run(argv, input=revs, capture_output=True, text=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        # Nothing reachable from `commit` that no tip reaches: a tip reaches `commit` itself.
        return done.stdout.strip() == ""

    def commits_between(self, old: str, new: str) -> list[str]:
        """Commits after `old` up to `new` on the first-parent line, oldest first."""
        spec = new if old == ZERO_SHA else f"{old}..{new}"
        output = str(self.repo.git.rev_list("--reverse", "--first-parent", spec))
        return output.split()

    def first_parent(self, sha: str) -> str:
        return self.resolve(f"{sha}^") or ZERO_SHA

    def changed_paths(self, old: str, new: str) -> list[str] | None:
        """Paths changed between two commits; None when there is no `old` (everything is new)."""
        if old == ZERO_SHA or self.resolve(old) is None:
            return None
        output = str(self.repo.git.diff("--name-only", "--no-renames", "-z", old, new))
        return [p for p in output.split("\0") if p]

    def history(self, sha: str, limit: int = 500) -> list[str]:
        return str(self.repo.git.rev_list(f"--max-count={limit}", "--first-parent", sha)).split()

    @contextmanager
    def checkout(self, sha: str) -> Iterator[Path]:
        """A clean worktree at `sha`, removed afterwards."""
        directory = Path(tempfile.mkdtemp(prefix="pipeline-checkout-"))
        target = directory / "src"
        try:
            self.repo.git.worktree("add", "--detach", "--force", str(target), sha)
        except git.GitCommandError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise PipelineError(f"{self.name}: cannot check out {sha[:12]}: {_reason(exc)}") from None
        try:
            yield target
        finally:
            try:
                self.repo.git.worktree("remove", "--force", str(target))
            except git.GitCommandError:
                pass
            shutil.rmtree(directory, ignore_errors=True)
            self.repo.git.worktree("prune")


def _reason(exc: git.GitCommandError) -> str:
    """git's own reason, whole and on one line, without credentials. GitPython wraps stderr as
    `\n  stderr: '...'`, so its last line alone is a lone quote; git's `fatal:`/`error:` lines are the
    reason, and progress lines (`Cloning into ...`) are not."""
    text = str(exc.stderr or "").strip()
    if text.startswith("stderr:"):
        text = text.removeprefix("stderr:").strip()
        if len(text) >= 2 and text[0] == text[-1] == "'":
            text = text[1:-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    chosen = [line.partition(":")[2].strip() for line in fatal] or lines[-1:]
    return strip_credentials("; ".join(chosen) or f"git exited {exc.status}")
