"""Paths named in pipelines.yaml stay inside the repository: contexts, Dockerfiles and `paths:` globs.

"The repository" is the git work tree around the config file, or the file's directory outside git.
Every look at the disk goes through vcs.probes, so `pipeline changed` can tell when its cache of a
checked config no longer holds (a context deleted, a symlink moved).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.vcs import probes


def repository_root(config_dir: Path) -> Path:
    """The nearest directory at or above `config_dir` holding `.git` (a directory, or a file in a
    linked worktree or submodule), else `config_dir`; symlinks resolved."""
    start = Path(probes.realpath(config_dir))
    for folder in (start, *start.parents):
        if probes.exists(folder / ".git"):
            return folder
    return start


def escape_problem(
    root: Path, path: Path, shown: str, what: str, advice: str = "keep build inputs inside it"
) -> str | None:
    """Why `path` (as written: `shown`) leaves the repository at `root`, or None when it stays inside.
    Symlinks count where they point: a link out of the repository leaves it."""
    try:
        real = probes.realpath(path)
    except (OSError, ValueError) as exc:
        return f"{what} '{shown}' is not a usable path ({exc})"
    top = str(root)
    if _inside(real, top):
        return None
    if _inside(os.path.normpath(os.path.abspath(path)), top):
        return f"{what} '{shown}' leads through a symlink to {real}, outside the repository {root}"
    return f"{what} '{shown}' is outside the repository {root}; {advice}"


def _inside(path: str, top: str) -> bool:
    """`path` is `top` or under it; both absolute and normalized. Path.is_relative_to on the text: the
    config's checks ask it 400 times for 200 images, where pathlib's parsing was most of the cost."""
    return path == top or path.startswith(top if top.endswith(os.sep) else top + os.sep)


def glob_problem(pattern: str) -> str | None:
    """Why a `paths:` glob could match outside the repository, or None."""
    if pattern.startswith(("/", "\\")):
        return f"'{pattern}' is absolute; globs are relative to pipelines.yaml"
    if ".." in pattern.replace("\\", "/").split("/"):
        return f"'{pattern}' has a '..' segment; globs must stay inside the repository"
    return None


def is_dir(path: Path) -> bool:
    """Path.is_dir, with unusable paths (too long, undecodable) counting as missing."""
    return probes.is_dir(path)


def is_file(path: Path) -> bool:
    return probes.is_file(path)
