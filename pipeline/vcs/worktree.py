"""A working tree read by plain `git` calls (no GitPython): its top directory, HEAD, and the paths changed
since a commit. What `pipeline changed` needs, in the commit hooks that call it, where importing
GitPython alone would take a sixth of its time budget."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import EnvironmentProblem, UsageError


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise EnvironmentProblem("git is not installed; changes are read from git") from None


def _text(output: bytes) -> str:
    # As GitPython decodes: paths that are not UTF-8 survive as surrogates, never an error.
    return output.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class WorkTree:
    """The git working tree around a directory: its top, HEAD's commit and branch (None when detached)."""

    root: Path
    head: str | None  # None before the first commit
    branch: str | None

    @classmethod
    def find(cls, directory: Path) -> WorkTree | None:
        """The working tree containing `directory` (searching upwards, as git does); None outside one."""
        done = _git(directory, "rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD")
        lines = _text(done.stdout).splitlines()
        if done.returncode == 0 and len(lines) == 3:
            root, head, ref = lines
            return cls(Path(root), head, ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None)
        top = _git(directory, "rev-parse", "--show-toplevel")  # no commit yet, or no repository at all
        return cls(Path(_text(top.stdout).strip()), None, None) if top.returncode == 0 else None

    def changes_since(self, since: str, label: str) -> list[str]:
        """Tracked paths (relative to the root) that differ between `since` and the working tree,
        committed or not; `label` names the repository in the error for an unknown `since`."""
        if _git(self.root, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}").returncode != 0:
            raise UsageError(f"--since {since}: no such commit in {label}")
        done = _git(self.root, "diff", "--name-only", "--no-renames", "-z", since, "--")
        if done.returncode != 0:
            raise UsageError(f"--since {since}: git diff failed in {label}: {_text(done.stderr).strip()}")
        return [path for path in _text(done.stdout).split("\0") if path]
