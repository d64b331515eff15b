"""The cache of `pipeline changed`: what it needs of a checked, planned config (per image: context,
Dockerfile, `paths:` globs, dependencies, variants), so a commit hook skips loading pydantic, PyYAML
and the config models when the pipelines file has not changed.

It is one JSON file in the working tree's git directory (`.git/pipeline/changed-cache.json`; a linked
worktree has its own), never in the work tree. An entry is used only when
- its key matches: the sha256 of the pipelines file's bytes and of its lock's (pipelines.lock, which
  touches every image as the pipelines file does), the installed pipeline code (its version
  and the path, size and mtime of each of its .py files: an upgrade may check more), this cache's
  format, the file's path and the current directory (relative paths in the file start there), the
  pipelines asked for, the branch and the CI's pull request number (templates are rendered with them)
  and the home directory (`~` paths);
- every look the config's checks took at the disk gives the same answer again (vcs.probes: each
  context and Dockerfile still there and leading to the same real path, the key files, the git root).
Anything else (no file, another key, a file that does not parse) is a miss: the caller loads the
config as every command does, which gives the same answer or the same error, and rewrites the entry.
.dockerignore files are not in it: they are read each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.bases.lock_file import lock_path
from pipeline.common.checkout import Checkout
from pipeline.errors import ConfigError
from pipeline.files import fresh_file, read_regular_file
from pipeline.vcs import probes

# Raise when what an entry holds, or what its key covers, changes: old entries then never match.
FORMAT = 4
# Entries kept (the newest): a few branches, pipeline selections or config files side by side.
KEEP = 8
# The installed pipeline package, whose code decides the answer (its checks, its plan).
CODE_ROOT = Path(__file__).resolve().parent.parent


def cache_file(git_dir: Path) -> Path:
    return git_dir / "pipeline" / "changed-cache.json"


def key_for(config_file: Path, pipelines: Sequence[str], checkout: Checkout) -> str | None:
    """The key of the entry for this pipelines file as it is now; None when it can't be read (no cache:
    loading it gives the error)."""
    try:
        content = read_regular_file(config_file, "pipelines file")
    except (OSError, ValueError, ConfigError):
        return None
    parts = {
        "format": FORMAT,
        "code": code_fingerprint(CODE_ROOT),
        "content": hashlib.sha256(content).hexdigest(),
        "lock": _lock_digest(config_file),
        "file": str(config_file),
        "cwd": os.getcwd(),
        "pipelines": list(pipelines),
        "branch": checkout.branch,
        "pr": checkout.pr,
        "home": os.path.expanduser("~"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _lock_digest(config_file: Path) -> str | None:
    """The sha256 of the lock beside the pipelines file; None when there is none (or it can't be read)."""
    try:
        return hashlib.sha256(lock_path(config_file).read_bytes()).hexdigest()
    except OSError:
        return None


def code_fingerprint(root: Path) -> str:
    """pipeline's version and the relative path, size and mtime of every .py file under `root`: another
    release or an edited checkout (the version stays "0.1.0" between them) gives another key. Stat only,
    never reading the files: ~150 of them in about a millisecond."""
    digest = hashlib.sha256(__version__.encode())
    stack = [str(root)]
    prefix = len(str(root)) + 1
    entries: list[str] = []
    while stack:
        try:
            with os.scandir(stack.pop()) as found:
                for entry in found:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__":
                            stack.append(entry.path)
                    elif entry.name.endswith(".py"):
                        info = entry.stat()
                        entries.append(f"{entry.path[prefix:]}\0{info.st_size}\0{info.st_mtime_ns}")
        except OSError:
            continue  # a directory gone meanwhile: the files that are there still name the code
    digest.update("\n".join(sorted(entries)).encode())
    return digest.hexdigest()


def read(git_dir: Path, key: str) -> list[Any] | None:
    """The image rows kept under `key` if the disk still looks as the checks saw it; None: load the config.
    The caller checks the rows too (triggers.changed): a row it can't read is a miss as well."""
    try:
        entry = _entries(cache_file(git_dir)).get(key)
        if entry is None:
            return None
        facts = [_fact(item) for item in entry["facts"]]
        images = entry["images"]
    except (OSError, ValueError, KeyError, TypeError):  # unreadable or not what this code writes
        return None
    return images if isinstance(images, list) and probes.still_true(facts) else None


def write(git_dir: Path, key: str, facts: Sequence[probes.Fact], images: Sequence[dict[str, Any]]) -> None:
    """Keep the image rows `images` under `key` (with the newest other entries), replacing the file at
    once: a reader sees the old file or the new one. A cache that can't be written is no error."""
    path = cache_file(git_dir)
    try:
        entries = _entries(path)
    except (OSError, ValueError, TypeError):
        entries = {}
    entries.pop(key, None)
    entries[key] = {"facts": [list(fact) for fact in facts], "images": list(images)}
    kept = dict(list(entries.items())[-KEEP:])
    text = json.dumps({"format": FORMAT, "entries": kept}, separators=(",", ":")).encode()
    try:
        path.parent.mkdir(exist_ok=True)
        # A fresh name each time: two writers, or a leftover of a killed one, never share it.
        handle, name = fresh_file(path)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text)
        os.replace(name, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        raise ValueError(f"{path}: not a cache of this version")
    entries: dict[str, Any] = data["entries"]
    return entries


def _fact(item: object) -> probes.Fact:
    if not isinstance(item, list) or len(item) != 3 or not all(isinstance(part, str) for part in item[:2]):
        raise TypeError(f"not a probe: {item!r}")
    if not isinstance(item[2], str | bool):
        raise TypeError(f"not a probe's answer: {item!r}")
    return (item[0], item[1], item[2])
