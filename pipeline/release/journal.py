"""The publish journal: before its first tag write, a run records every tag change it is about to
make, one file per pipeline under the pipeline's state directory (written atomically, fsync'd). A run
killed while publishing leaves its journal behind; the next run of that pipeline on this machine
completes the recorded changes first (every image of that run had succeeded, so rolling forward is
right), then removes it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

JOURNAL_NAME = "publish-journal.json"
FORMAT = 1


@dataclass(frozen=True)
class JournalEntry:
    """One intended tag write: `repository:tag` goes from `previous` (None: absent) to `digest`."""

    image: str
    repository: str
    tag: str
    kind: str
    digest: str
    previous: str | None

    def data(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Journal:
    path: Path
    entries: tuple[JournalEntry, ...]
    started_at: float
    what: str  # e.g. "version 2.1.5", for the message that completes it


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_journal(directory: Path, entries: list[JournalEntry], what: str) -> Path:
    """Write the journal atomically: a temporary file, fsync, rename over the name, fsync the directory.
    A reader sees the whole journal or none."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "pid": os.getpid(),
        "started_at": time.time(),
        "what": what,
        "changes": [e.data() for e in entries],
    }
    handle = tempfile.NamedTemporaryFile("w", dir=directory, prefix=".journal-", suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        path = directory / JOURNAL_NAME
        os.replace(handle.name, path)
        _fsync_dir(directory)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def read_journal(directory: Path) -> Journal | None:
    path = directory / JOURNAL_NAME
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        entries = tuple(
            JournalEntry(
                image=str(c["image"]),
                repository=str(c["repository"]),
                tag=str(c["tag"]),
                kind=str(c["kind"]),
                digest=str(c["digest"]),
                previous=None if c["previous"] is None else str(c["previous"]),
            )
            for c in data["changes"]
        )
        return Journal(path, entries, float(data["started_at"]), str(data.get("what", "")))
    except (ValueError, KeyError, TypeError) as exc:
        # Written atomically, so this is damage from outside: refuse rather than guess what was meant.
        raise PipelineError(
            f"{path}: unreadable publish journal ({exc}); inspect the registry, then delete the file"
        ) from None


def remove_journal(path: Path) -> None:
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)
