"""Logging commands, escaped per each service's rules: GitHub's workflow commands (`::error ...::`,
`::group::`) and Azure's (`##vso[...]`, `##[group]`). Error annotations that point at a file position.
CommandFilter keeps every other line printed in CI from being read as a command."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from pipeline.ci.environment import Provider

# Every ConfigError from pipeline.config starts so (config/positions.py): `pipelines.yaml:12:7: message`.
POSITION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.DOTALL)


def github_data(text: str) -> str:
    """A workflow command's message (actions/toolkit core's escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A workflow command's property value: also `:` and `,`, which end a value (escapeProperty)."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def azure_data(text: str) -> str:
    """A `##vso[...]` message (azure-pipelines-task-lib's escapedata): `%` becomes %AZP25, not %25."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def azure_property(text: str) -> str:
    """A `##vso[...]` property value: also `]` (ends the properties) and `;` (separates them)."""
    return azure_data(text).replace("]", "%5D").replace(";", "%3B")


@dataclass(frozen=True)
class Position:
    file: str  # relative to the workspace when inside it, `/`-separated
    line: int
    column: int
    message: str  # the error without its position


def position_of(message: str, cwd: Path, workspace: Path | None) -> Position | None:
    """The file position an error message starts with, or None."""
    matched = POSITION.match(message)
    if matched is None:
        return None
    file = matched.group("file")
    absolute = Path(os.path.normpath(cwd / file))
    if workspace is not None:
        root = Path(os.path.normpath(workspace.absolute()))
        if absolute == root or root in absolute.parents:
            file = PurePosixPath(*absolute.relative_to(root).parts).as_posix()
    return Position(file, int(matched.group("line")), int(matched.group("col")), matched.group("message"))


def error_annotations(provider: Provider, message: str, cwd: Path, workspace: Path | None) -> list[str]:
    """The lines that make the service show `message` as an error (on the file line when it names one);
    none for GitLab, which has no such command."""
    where = position_of(message, cwd, workspace)
    if provider == "github":
        if where is None:
            return [f"::error::{github_data(message)}"]
        properties = f"file={github_property(where.file)},line={where.line},col={where.column}"
        return [f"::error {properties}::{github_data(where.message)}"]
    if provider == "azure":
        if where is None:
            return [f"##vso[task.logissue type=error]{azure_data(message)}"]
        properties = f"sourcepath={azure_property(where.file)};linenumber={where.line};columnnumber={where.column}"
        return [f"##vso[task.logissue type=error;{properties}]{azure_data(where.message)}"]
    return []


@dataclass(frozen=True)
class GroupSyntax:
    """How a service folds a run of log lines under a title. Groups cannot nest or interleave."""

    start: str  # with {title}
    end: str
    escape: Callable[[str], str]

    def open(self, title: str) -> Command:
        return Command(self.start.format(title=self.escape(title)))

    def close(self) -> Command:
        return Command(self.end)


GROUPS: dict[Provider, GroupSyntax] = {
    "github": GroupSyntax("::group::{title}", "::endgroup::", github_data),
    "azure": GroupSyntax("##[group]{title}", "##[endgroup]", azure_data),
}


@dataclass(frozen=True)
class Command:
    """A logging command of pipeline's own, among lines of text: written with `write_command`, unfiltered."""

    text: str


# What the runners parse as a command in a line of a step's output (a line ends at \n or \r, as .NET's
# ReadLine reads it): Azure's agent `##vso[` anywhere; GitHub's runner `::` after leading whitespace, and its
# older syntax `##[` anywhere (ActionCommand.TryParse); `##[group]` and the like are Azure's formatting
# commands. Both runners compare with .NET's culture-sensitive IndexOf/StartsWith, which under ICU skips
# ignorable characters: `#\u200b#vso[` is `##vso[` to them. So matching runs on the text without them, line
# breaks are the ones str.splitlines knows (a superset of ReadLine's) but U+001C-U+001E, and case is ignored.
# Those three (and U+001F) are whitespace to Python but neither line breaks nor whitespace to .NET, and ICU
# ignores them: `#\x1e#vso[` is a command, so they are left out of the text like U+200B.
COMMAND = re.compile(r"##vso\[|##\[|(?:^|[\n\r\x0b\x0c\x85\u2028\u2029])\s*::", re.IGNORECASE)
LINE_BREAKS = re.compile(r"[^\n\r\x0b\x0c\x85\u2028\u2029]*\Z")
# Inserted before a command's last character. It shows as a space but is neither whitespace (which a runner
# trims) nor ignorable in ICU's collation, unlike a zero-width space (U+200B), which the runners would skip.
NEUTRAL = "\u2800"  # BRAILLE PATTERN BLANK
NEUTRAL_ASCII = " "  # for a stream that cannot encode it (cp1252 on a Windows agent)
# ICU 72's completely ignorable characters are these categories, less whitespace, and a few others.
IGNORABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Mn", "Mc", "Me"})
IGNORABLE_OTHERS = frozenset("\u0640\u07fa\u180a\u1cd3\ufe73")
LOOKBEHIND = len("##vso")  # a command that ends in the next write starts at most this far back


def _ignorable(char: str) -> bool:
    if " " <= char <= "~" or (char.isspace() and not "\x1c" <= char <= "\x1f"):
        return False
    return char in IGNORABLE_OTHERS or unicodedata.category(char) in IGNORABLE_CATEGORIES


def defuse(text: str, before: str = "", neutral: str = NEUTRAL) -> tuple[str, str]:
    """`text` with `neutral` before the last character of every command that ends in it, and what the next
    text's `before` is. `before` stands for what was written before `text` (from `defuse` itself, "" at the
    start of a line): ignorable characters left out, cut to what can still start a command."""
    kept = [i for i, char in enumerate(text) if not _ignorable(char)]
    skeleton = before + "".join(text[i] for i in kept)
    cuts = [kept[m.end() - 1 - len(before)] for m in COMMAND.finditer(skeleton) if m.end() > len(before)]
    pieces: list[str] = []
    start = 0
    for cut in cuts:
        pieces += [text[start:cut], neutral]
        start = cut
    pieces.append(text[start:])
    line = LINE_BREAKS.search(skeleton)
    assert line is not None  # matches the empty string at the end at least
    # Little but whitespace since the line's start: `::` may still begin a command at the start (`^`) of
    # what is left; else a character that begins none ends that, before the characters that may begin `##vso[`.
    opening = line.group().lstrip()
    after = opening if len(opening) <= LOOKBEHIND else "." + skeleton[-LOOKBEHIND:]
    return "".join(pieces), after


class CommandFilter(io.TextIOBase):
    """A text stream (stdout, stderr in CI) that defuses every command in what is written to it, so build
    output cannot set variables or annotate; pipeline's own commands go through `command`. Thread-safe:
    it sees the writes in the order the stream gets them."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw
        self._lock = threading.RLock()
        self._before = ""
        self._line_start = True
        self._neutral = NEUTRAL if _encodes(raw, NEUTRAL) else NEUTRAL_ASCII

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self.raw.errors

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click tells text streams from binary ones by this
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            safe, self._before = defuse(text, self._before, self._neutral)
            self.raw.write(safe)
            if text:
                self._line_start = text.endswith("\n")
        return len(text)

    def command(self, line: str) -> None:
        """One of pipeline's own commands, on a line of its own."""
        with self._lock:
            self.raw.write(("" if self._line_start else "\n") + line + "\n")
            self.raw.flush()
            self._before, self._line_start = "", True

    def flush(self) -> None:
        self.raw.flush()


def _encodes(stream: TextIO, text: str) -> bool:
    if not getattr(stream, "encoding", None):
        return True  # a stream of text (io.StringIO) stores any character
    try:
        text.encode(stream.encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def write_command(line: str, stream: TextIO) -> None:
    """A command of pipeline's own: past the filter when `stream` has one (in CI), else as a line."""
    if isinstance(stream, CommandFilter):
        stream.command(line)
    else:
        stream.write(line + "\n")
        stream.flush()


def inert_json(data: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`data` as JSON in which no runner finds a command, decoding to the same data: non-ASCII
    characters and line breaks are escaped (`\\uXXXX`), and so is every `#` (as `\\u0023`); a line of it
    starts with a quote, a bracket or a value, never with `::`."""
    return json.dumps(data, indent=indent, ensure_ascii=True, sort_keys=sort_keys).replace("#", "\\u0023")
