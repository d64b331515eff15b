"""The working tree's paths as the config's checks see them: what kind of thing each is and where it
really leads. Every answer can be noted while a recording is on, so a result derived from them (the
cache of `pipeline changed`) is reused only while asking again gives the same answers.

    with recording() as facts:
        config = load_config(path)      # its checks ask through is_dir, is_file, realpath, exists
    ...
    if still_true(facts): ...           # nothing the checks looked at has changed since
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

# (probe name, path as asked, answer); the answer of a probe that raised is "!" + the exception's name.
Fact = tuple[str, str, str | bool]

# A context variable, not a global: a server loading two configs in two threads records each apart.
_facts: ContextVar[dict[tuple[str, str], str | bool] | None] = ContextVar("pipeline_probe_facts", default=None)
# While recording, the probes are answered as still_true replays them (_Replay: one lstat per directory,
# the probe's own answer always), and a path asked again gets the answer it got (the checks and then the
# plan ask for the same 200 contexts): one look at the disk per recording.
_answers: ContextVar[_Replay | None] = ContextVar("pipeline_probe_answers", default=None)


# os.path's predicates answer False for unusable paths (too long, undecodable), as the checks want.
PROBES: dict[str, Callable[[str], str | bool]] = {
    "realpath": os.path.realpath,
    "is_dir": os.path.isdir,
    "is_file": os.path.isfile,
    "exists": os.path.exists,
}


def _ask(probe: str, path: str | Path) -> str | bool:
    text = os.fspath(path)
    facts = _facts.get()
    replay = _answers.get()
    if facts is not None:
        known = facts.get((probe, text))
        if isinstance(known, bool) or (known is not None and not known.startswith("!")):
            return known  # a probe that raised is asked again, to raise again
    try:
        answer = replay.answer(probe, text) if replay is not None else PROBES[probe](text)
    except (OSError, ValueError) as exc:
        if facts is not None:
            facts.setdefault((probe, text), "!" + type(exc).__name__)
        raise
    if facts is not None:
        facts.setdefault((probe, text), answer)
    return answer


def realpath(path: str | Path) -> str:
    """os.path.realpath (symlinks followed; may raise ValueError for a NUL byte)."""
    return str(_ask("realpath", path))


def is_dir(path: str | Path) -> bool:
    """A directory (through symlinks); unusable paths (too long, undecodable) count as missing."""
    return bool(_ask("is_dir", path))


def is_file(path: str | Path) -> bool:
    return bool(_ask("is_file", path))


def exists(path: str | Path) -> bool:
    return bool(_ask("exists", path))


@contextmanager
def recording() -> Iterator[list[Fact]]:
    """Note every probe asked in this context (thread) until the block ends; the list fills at the end."""
    found: list[Fact] = []
    token = _facts.set({})
    replay_token = _answers.set(_Replay())
    try:
        yield found
    finally:
        noted = _facts.get() or {}
        _answers.reset(replay_token)
        _facts.reset(token)
        found.extend((probe, path, answer) for (probe, path), answer in noted.items())


def still_true(facts: Sequence[Fact]) -> bool:
    """Whether every probe gives the answer it gave when noted (relative paths: from the same directory)."""
    again = _Replay()
    for probe, path, answer in facts:
        if probe not in PROBES:
            return False
        try:
            now = again.answer(probe, path)
        except (OSError, ValueError) as exc:
            now = "!" + type(exc).__name__
        if now != answer:
            return False
    return True


class _Replay:
    """The probes' answers again, with one lstat per directory for all of them: a commit hook checks
    hundreds of contexts and Dockerfiles below the same few directories, and os.path.realpath alone
    would lstat every component of each. Only a path made of plain components (no symlink, no `..`,
    no trailing slash) is answered from the lstats; any other goes to the probe itself, so the answer
    is always the probe's."""

    def __init__(self) -> None:
        self.lstats: dict[str, os.stat_result | None] = {}

    def answer(self, probe: str, path: str) -> str | bool:
        found = self._plain(path)
        if found is None:
            return PROBES[probe](path)
        if probe == "realpath":
            return os.path.abspath(path)  # what realpath gives when no component is a link
        if probe == "is_dir":
            return stat.S_ISDIR(found.st_mode)
        if probe == "is_file":
            return stat.S_ISREG(found.st_mode)
        return True  # exists

    def _plain(self, path: str) -> os.stat_result | None:
        """The lstat of `path` when each of its components exists and is no symlink (so stat and lstat
        agree, and realpath is abspath); None when that is not so, or not simple to tell."""
        if not path or path.startswith("//") or (path.endswith("/") and path != "/") or "\0" in path:
            return None
        parts = [part for part in path.split("/") if part and part != "."]
        if not parts or ".." in parts:
            return None
        prefix = "/" if path.startswith("/") else ""
        found = None
        for part in parts:
            prefix = prefix + part if prefix in ("", "/") else prefix + "/" + part
            if prefix not in self.lstats:
                try:
                    self.lstats[prefix] = os.lstat(prefix)
                except (OSError, ValueError):
                    self.lstats[prefix] = None
            found = self.lstats[prefix]
            if found is None or stat.S_ISLNK(found.st_mode):
                return None
        return found
