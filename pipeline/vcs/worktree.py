"""A working tree read by plain `git` calls (no GitPython): its top directory, HEAD, and the paths changed
since a commit, untracked files included. What `pipeline changed` needs, in the commit hooks that call
it, where importing GitPython alone would take a sixth of its time budget."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import EnvironmentProblem, UsageError


class GitCall:
    """One `git` process, started now and read when `done` is called (so several run side by side): the
    plain-git runner of `changed`, of a run's checkout (vcs.info) and of claims (vcs.refs). `env`: variables
    set for this call on top of the process's environment. Standard input is empty, as GitPython's."""

    def __init__(self, cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        try:
            self.process = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **env} if env else None,
            )
        except FileNotFoundError:
            raise EnvironmentProblem("git is not installed; changes are read from git") from None

    def done(self) -> tuple[int, str, str]:
        out, err = self.process.communicate()
        return self.process.returncode, _text(out), _text(err)


def git_outputs(cwd: Path, *commands: tuple[str, ...]) -> list[str] | None:
    """What each `git COMMAND` printed, the commands run side by side; None when git is missing, `cwd`
    is not a directory, or any of them failed."""
    try:
        running = [GitCall(cwd, *command) for command in commands]
    except (EnvironmentProblem, OSError):  # no git binary; `cwd` gone
        return None
    finished = [process.done() for process in running]
    return [out for _code, out, _err in finished] if all(code == 0 for code, _o, _e in finished) else None


# What git says outside a repository, or in a bare one: not a working tree, so no WorkTree (None).
_NOT_A_WORK_TREE = ("not a git repository", "must be run in a work tree")


def _refusal(stderr: str) -> str | None:
    """git's `fatal:` line when it found a repository but will not read it (e.g. "detected dubious
    ownership", safe.directory): an error, not "outside git"."""
    fatal = next((line for line in stderr.splitlines() if line.startswith("fatal:")), None)
    if fatal is None or any(words in fatal for words in _NOT_A_WORK_TREE):
        return None
    return fatal.removeprefix("fatal:").strip()


def _text(output: bytes) -> str:
    # As GitPython decodes: paths that are not UTF-8 survive as surrogates, never an error.
    return output.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class WorkTree:
    """The git working tree around a directory: its top, HEAD's commit and branch (None when detached),
    and its own git directory (a linked worktree's under the main one's `worktrees/`)."""

    root: Path
    head: str | None  # None before the first commit
    branch: str | None
    git_dir: Path | None = None  # None before the first commit

    @classmethod
    def find(cls, directory: Path) -> WorkTree | None:
        """The working tree containing `directory` (searching upwards, as git does); None outside one."""
        return cls.read(GitCall(directory, *HEAD_COMMAND), directory)

    @classmethod
    def read(cls, head: GitCall, directory: Path) -> WorkTree | None:
        code, out, _ = head.done()
        lines = out.splitlines()
        if code == 0 and len(lines) == 4:
            root, git_dir, sha, ref = lines
            branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
            return cls(Path(root), sha, branch, Path(git_dir))
        code, out, err = GitCall(directory, "rev-parse", "--show-toplevel").done()  # no commit yet, or no repository
        if code == 0:
            return cls(Path(out.strip()), None, None)
        refusal = _refusal(err)
        if refusal:
            raise EnvironmentProblem(f"{directory}: git refuses to read this repository: {refusal}")
        return None

    def changes_since(self, since: str, label: str) -> list[str]:
        """Paths (relative to the root) that differ between `since` and the working tree, committed or
        not, untracked files included; `label` names the repository in the error for an unknown `since`."""
        known, diff, untracked = (
            GitCall(self.root, *_known(since)),
            GitCall(self.root, *_diff(since)),
            GitCall(self.root, *_UNTRACKED),
        )
        return _changed_paths(known, diff, untracked, since, label)


# Untracked files .gitignore (and git's other exclude files) lets through, from the top whatever the
# directory it runs in (`:/`), as their paths from the top (`--full-name`). Like a diff with the working
# tree, they are changes: the input digest hashes them, so `changed` must name them too.
_UNTRACKED = ("ls-files", "--others", "--exclude-standard", "--full-name", "-z", "--", ":/")
HEAD_COMMAND = ("rev-parse", "--show-toplevel", "--absolute-git-dir", "HEAD", "--symbolic-full-name", "HEAD")


def _revision(since: str) -> str:
    """`since` as git gets it: never read as one of git's options (`--output=FILE` would write a file)."""
    if since.startswith("-"):
        raise UsageError(f"--since {since}: a revision cannot start with '-'")
    return since


def _known(since: str) -> tuple[str, ...]:
    since = _revision(since)
    return ("rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")


def _diff(since: str) -> tuple[str, ...]:
    since = _revision(since)
    # Paths from the top whatever the directory it runs in (`--no-relative` beats a diff.relative setting).
    return ("diff", "--no-relative", "--name-only", "--no-renames", "-z", since, "--")


def _changed_paths(known: GitCall, diff: GitCall, untracked: GitCall, since: str, label: str) -> list[str]:
    """The diff's paths and the untracked files, in git's order (by bytes), each once."""
    if known.done()[0] != 0:
        diff.done()
        untracked.done()
        raise UsageError(f"--since {since}: no such commit in {label}")
    code, out, err = diff.done()
    if code != 0:
        untracked.done()
        raise UsageError(f"--since {since}: git diff failed in {label}: {err.strip()}")
    paths = {path for path in out.split("\0") if path}
    code, out, err = untracked.done()
    if code != 0:
        raise UsageError(f"git ls-files failed in {label}: {err.strip()}")
    # A nested repository is listed as its directory (`sub/`): the path of that directory.
    paths.update(path.rstrip("/") for path in out.split("\0") if path)
    return sorted(paths, key=_git_order)


def _git_order(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Baseline:
    """What the working tree is compared with: `revision` (None: no earlier commit, so every file
    counts as changed) and how to name it to a user."""

    revision: str | None
    described: str


# Without --since: the commit HEAD forked from its upstream (`git merge-base HEAD @{upstream}`), what a
# pull request would show, when the branch has an upstream; else HEAD's parent; else, on the first
# commit (or before it), nothing to compare with.
_UPSTREAM_NAME = ("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
_UPSTREAM_BASE = ("merge-base", "HEAD", "@{upstream}")
_PARENT = "HEAD~1"


def _default_baseline(directory: Path) -> Baseline:
    """The baseline when none is given, from three git questions asked side by side."""
    name, base, parent = (
        GitCall(directory, *_UPSTREAM_NAME),
        GitCall(directory, *_UPSTREAM_BASE),
        GitCall(directory, *_known(_PARENT)),
    )
    (name_code, upstream, _), (base_code, sha, _) = name.done(), base.done()
    parent_code = parent.done()[0]
    if name_code == 0 and base_code == 0 and sha.strip():
        return Baseline(sha.strip(), f"merge-base with {upstream.strip()} ({sha.strip()[:12]})")
    if parent_code == 0:
        return Baseline(_PARENT, _PARENT)
    return Baseline(None, "no earlier commit (everything counts as changed)")


class PendingChanges:
    """The working tree around `directory` and what changed in it since `since` (None: the default
    baseline, above), asked of git at once: the processes run while the caller does other work
    (`changed` loads the config meanwhile, so on two cores the diff, the floor of the whole command,
    adds no time of its own). Read them once."""

    def __init__(self, directory: Path, since: str | None) -> None:
        self.directory = directory
        self._head = GitCall(directory, *HEAD_COMMAND)
        self._untracked = GitCall(directory, *_UNTRACKED)
        self.baseline = Baseline(_revision(since), since) if since is not None else _default_baseline(directory)
        self._known: GitCall | None = None
        self._diff: GitCall | None = None
        if self.baseline.revision is not None:
            self._known = GitCall(directory, *_known(self.baseline.revision))
            self._diff = GitCall(directory, *_diff(self.baseline.revision))

    def tree(self) -> WorkTree | None:
        return WorkTree.read(self._head, self.directory)

    def paths(self, label: str) -> list[str] | None:
        """The changed paths (relative to the root); None when there is no baseline: everything counts."""
        if self._known is None or self._diff is None or self.baseline.revision is None:
            self._untracked.done()
            return None
        return _changed_paths(self._known, self._diff, self._untracked, self.baseline.revision, label)
