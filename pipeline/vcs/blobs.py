"""Blob ids of a checkout's tracked files whose working copy is unmodified (the input digest's identity
for them, read from the index instead of the files)."""

from __future__ import annotations

from pathlib import Path

from pipeline.vcs.loader import git


def unmodified_blobs(path: Path) -> tuple[Path, dict[str, str]] | None:
    """The working tree's top around `path` and, for each tracked file not modified there (path from
    the top), `git:<mode>:<blob id>`; None outside a repository or when git cannot answer."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
        root = Path(str(repo.working_tree_dir))
        staged = str(repo.git.ls_files("-s", "-z"))
        dirty = str(repo.git.status("--porcelain", "-z", "--untracked-files=no"))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
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
