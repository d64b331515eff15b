"""Which context files changed an image's input digest since a commit (`explain`): the listing the
digest hashes now (cache/inputs.context_listing: what the ignore file lets through, untracked files
included) against the same listing made from the commit's tree, with the ignore file as it was then.
Files no ignore file lets through are never named; added, changed and deleted files are."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.cache.inputs import GitBlobs, context_hash, context_listing
from pipeline.dockerfile.ignore import IgnoreMatcher, patterns_of, reads_own_ignore_file
from pipeline.plan import PlannedImage
from pipeline.vcs.history import History

# git's modes of what a context can hold: files, executables, symlinks (a submodule's 160000 is no file).
_FILE_MODES = ("100644", "100755", "120000")


@dataclass(frozen=True)
class FileChange:
    """A context file whose presence or content differs from the commit's (path from the repository's top)."""

    path: str
    change: Literal["added", "modified", "deleted"]

    @property
    def line(self) -> str:
        return self.path if self.change == "modified" else f"{self.path} ({self.change})"


@dataclass(frozen=True)
class ContextChanges:
    """The files that differ, and whether the commit's listing is the one the last build hashed (its
    recorded context hash): when not, that build was made from files the commit does not hold."""

    files: list[FileChange]
    exact: bool


def context_changes(
    repo: History, image: PlannedImage, revision: str, blobs: GitBlobs | None, recorded: set[str]
) -> ContextChanges | None:
    """The context files of `image` that differ between `revision` and the working tree, as its input
    digest sees them; None when the context is outside the repository or `revision` can't be read.
    `recorded`: the context hashes the last build's labels hold (one per variant)."""
    root = repo.root
    try:
        context = image.context.resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    prefix = "" if context == "." else context + "/"
    buildkit = reads_own_ignore_file(image.builder)
    then = _listing_at(repo, revision, root, prefix, image, buildkit=buildkit)
    if then is None:
        return None
    now = context_listing(image.context, image.dockerfile, blobs, buildkit=buildkit)
    files = []
    for name in sorted({*then, *now}):
        if name not in then:
            files.append(FileChange(prefix + name, "added"))
        elif name not in now:
            files.append(FileChange(prefix + name, "deleted"))
        elif then[name] != now[name]:
            files.append(FileChange(prefix + name, "modified"))
    return ContextChanges(files, context_hash(then) in recorded)


def _listing_at(
    repo: History, revision: str, root: Path, prefix: str, image: PlannedImage, *, buildkit: bool
) -> dict[str, str] | None:
    """context_listing for the tree of `revision`: git's ids of the files there that its ignore file
    (as it was at that commit) lets through; None when git cannot read that tree."""
    listed = repo.tree(revision, prefix)
    if listed is None:
        return None
    entries = {}
    for entry in listed.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split(" ")  # mode, type, id
        if len(parts) == 3 and parts[0] in _FILE_MODES and path.startswith(prefix):
            entries[path[len(prefix) :]] = f"git:{parts[0]}:{parts[2]}"
    # The ignore file the build reads (dockerfile.ignore_file's rule), as it was at that commit.
    patterns = None
    if buildkit:
        try:
            dockerfile = image.dockerfile.resolve().relative_to(root).as_posix()
            patterns = _patterns_at(repo, revision, f"{dockerfile}.dockerignore")
        except ValueError:
            pass  # a Dockerfile outside the repository: its own ignore file isn't in the commit either
    if patterns is None:
        patterns = _patterns_at(repo, revision, prefix + ".dockerignore") or []
    return sent_files(entries, patterns, os.path.relpath(image.dockerfile, image.context))


def _patterns_at(repo: History, revision: str, path: str) -> list[str] | None:
    """The patterns of the ignore file at `path` in `revision`, read as dockerfile.ignore_patterns
    reads one; None when the commit has no such file."""
    text = repo.file_at(revision, path)
    return None if text is None else patterns_of(text)


def sent_files(entries: Mapping[str, str], patterns: list[str], dockerfile: str) -> dict[str, str]:
    """Of `entries` (context-relative path -> id), those a build context would send: the walk of
    dockerfile.ignore.context_paths (which the input digest uses) over the directories the entries make
    instead of the disk, so the same rule decides (a directory it skips is skipped here too)."""
    matcher = IgnoreMatcher([*patterns, f"!{dockerfile}"])
    children: dict[str, set[str]] = {}
    for path in entries:
        parts = path.split("/")
        for depth in range(len(parts)):
            children.setdefault("/".join(parts[:depth]), set()).add("/".join(parts[: depth + 1]))
    sent: dict[str, str] = {}
    pending = [""]
    while pending:
        for path in sorted(children.get(pending.pop(), ())):
            excluded = matcher.matches(path)
            if path in entries:
                if not excluded:
                    sent[path] = entries[path]
            elif not excluded or matcher.descends(path):
                pending.append(path)
    return sent
