"""Which ignore file a build reads. BuildKit first looks for `<Dockerfile path>.dockerignore` beside
the Dockerfile (`app.Dockerfile.dockerignore`), then the context's `.dockerignore`; the classic
builder (and the docker CLI talking to it) reads only the context's. And which paths its patterns exclude."""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.files import read_regular_file


def reads_own_ignore_file(builder: str) -> bool:
    """Whether an image's builder (its `builder:`) is BuildKit, which reads `<Dockerfile>.dockerignore`
    first: the input digest, `changed` and the builders decide it by this one rule."""
    return builder == "docker"


def ignore_file(context: Path, dockerfile: Path, *, buildkit: bool) -> Path:
    if buildkit:
        own = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if own.is_file():
            return own
    return context / ".dockerignore"


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of an ignore file as the docker CLI reads them (none when it does not exist)."""
    try:
        text = read_regular_file(path, "ignore file").decode("utf-8")
    except OSError:
        return []
    return patterns_of(text)


def patterns_of(text: str) -> list[str]:
    """The patterns of an ignore file's text: its lines, stripped, without blanks and `#` comments."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class IgnoreMatcher:
    """Whether a context-relative path is excluded by .dockerignore patterns, and which paths a context
    sends, exactly as docker-py's `docker.utils.build.PatternMatcher` (7.1) decides and walks them: its
    algorithm, ported (Apache-2.0, after moby's fileutils). The one matcher of the input digests
    (cache/inputs), `changed` and `explain`. Ported rather than imported: importing `docker.utils` loads
    the whole engine client and `requests` first (~150 ms), a third of the time `pipeline changed` may
    take in a commit hook. tests/unit/dockerfile/test_ignore_matcher.py and test_context_paths.py hold it
    to docker-py's answers.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        parsed = [_IgnorePattern(p) for p in patterns]
        # A pattern that cleans to nothing ("", ".", "/") matches nothing; .dockerignore itself is always sent.
        self.patterns = [p for p in parsed if p.dirs] + [_IgnorePattern("!.dockerignore")]

    def descends(self, directory: str) -> bool:
        """Whether an excluded directory is still walked: an exception (`!dir/file`) starts with it."""
        return any(p.exclusion and p.cleaned.startswith(directory) for p in self.patterns)

    def walk(self, root: Path) -> set[str]:
        """Every path (files and directories, context-relative) below `root` these patterns let
        through, as docker-py's `PatternMatcher.walk` lists them: an excluded directory is not entered
        unless an exception may re-include something in it; a symlink to a directory is not entered."""
        sent: set[str] = set()
        pending = [""]
        while pending:
            prefix = pending.pop()
            for name in os.listdir(root / prefix if prefix else root):
                path = f"{prefix}/{name}" if prefix else name
                excluded = self.matches(path)
                if not excluded:
                    sent.add(path)
                full = root / path
                if full.is_dir() and not full.is_symlink() and (not excluded or self.descends(path)):
                    pending.append(path)
        return sent

    def matches(self, path: str) -> bool:
        matched = False
        parent = posixpath.dirname(path)
        parent_dirs = _split_path(parent)
        for pattern in self.patterns:
            match = pattern.match(path)
            if not match and parent != "" and len(pattern.dirs) <= len(parent_dirs):
                match = pattern.match("/".join(parent_dirs[: len(pattern.dirs)]))
            if match:
                matched = not pattern.exclusion
        return matched


def context_paths(context: Path, patterns: Iterable[str], dockerfile: str) -> set[str]:
    """The paths a build context sends: those `patterns` let through, the Dockerfile (`dockerfile`,
    relative to the context) and .dockerignore always among them, as docker-py's `exclude_paths` lists them."""
    return IgnoreMatcher([*patterns, f"!{dockerfile}"]).walk(context)


class _IgnorePattern:
    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        self.dirs = _clean(text[1:] if self.exclusion else text)
        self.cleaned = "/".join(self.dirs)
        # docker-py compares case-insensitively (its fnmatch lowers both sides).
        self.regex = _regex("/".join(self.dirs).lower())

    def match(self, path: str) -> bool:
        return self.regex.match(path.lower()) is not None


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    # Every image's .dockerignore tends to hold the same few patterns: translate each once.
    return re.compile(_translate(pattern))


def _split_path(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def _clean(pattern: str) -> list[str]:
    """Trailing spaces, leading/trailing slashes and `.` dropped; `..` removes the element before it."""
    parts = _split_path(pattern.strip())
    i = 0
    while i < len(parts):
        if parts[i] == "..":
            del parts[i]
            if i > 0:
                del parts[i - 1]
                i -= 1
        else:
            i += 1
    return parts


def _translate(pattern: str) -> str:
    """docker-py's shell pattern to regex: `*` and `?` stop at `/`, `**` spans directories."""
    i, n, out = 0, len(pattern), "^"
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":  # **/ is **
                    i += 1
                out += ".*" if i >= n else "(.*/)?"
            else:
                out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out += "\\["
            else:
                stuff = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if stuff[0] == "!":
                    stuff = "^" + stuff[1:]
                elif stuff[0] == "^":
                    stuff = "\\" + stuff
                out += f"[{stuff}]"
        else:
            out += re.escape(c)
    return out + "$"
