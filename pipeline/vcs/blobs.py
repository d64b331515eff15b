"""Blob ids of a checkout's tracked files whose working copy is unmodified (the input digest's identity
for them, read from the index instead of the files). Plain `git` calls, no GitPython: every run reads
them, a no-op run included, and GitPython's import would be a noticeable part of its time."""

from __future__ import annotations

from pathlib import Path

from pipeline.vcs.worktree import git_outputs


def unmodified_blobs(path: Path) -> tuple[Path, dict[str, str]] | None:
    """The working tree's top around `path` and, for each tracked file not modified there (path from
    the top), `git:<mode>:<blob id>`; None outside a repository or when git cannot answer."""
    top = git_outputs(path, ("rev-parse", "--show-toplevel"))
    if top is None or not top[0].strip():
        return None
    root = Path(top[0].rstrip("\n"))
    read = git_outputs(root, ("ls-files", "-s", "-z"), ("status", "--porcelain", "-z", "--untracked-files=no"))
    if read is None:
        return None
    staged, dirty = read
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
