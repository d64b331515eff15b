"""Blob ids of a checkout's tracked files whose working copy is unmodified (the input digest's identity
for them, read from the index instead of the files). Plain `git` calls, no GitPython: every run reads
them, a no-op run included, and GitPython's import would be a noticeable part of its time."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(cwd: Path, *args: str) -> str | None:
    """What `git ARGS` printed (decoded as GitPython does), or None if git is missing or failed."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError:  # no git binary, or `cwd` is not a directory
        return None
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def unmodified_blobs(path: Path) -> tuple[Path, dict[str, str]] | None:
    """The working tree's top around `path` and, for each tracked file not modified there (path from
    the top), `git:<mode>:<blob id>`; None outside a repository or when git cannot answer."""
    top = _git(path, "rev-parse", "--show-toplevel")
    if not top or not top.strip():
        return None
    root = Path(top.rstrip("\n"))
    staged = _git(root, "ls-files", "-s", "-z")
    dirty = _git(root, "status", "--porcelain", "-z", "--untracked-files=no")
    if staged is None or dirty is None:
        return None
    modified = {entry[3:] for entry in dirty.split("\0") if len(entry) > 3}
    blobs = {}
    for entry in staged.split("\0"):
        if not entry:
            continue
        meta, _, name = entry.partition("\t")
        mode, blob, _stage = meta.split(" ")
        if name not in modified:
            blobs[name] = f"git:{mode}:{blob}"
    return root, blobs
