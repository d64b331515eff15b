"""Logging commands, escaped per each service's rules: GitHub's workflow commands (`::error ...::`,
`::group::`) and Azure's (`##vso[...]`, `##[group]`). Error annotations that point at a file position."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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

    def open(self, title: str) -> str:
        return self.start.format(title=self.escape(title))


GROUPS: dict[Provider, GroupSyntax] = {
    "github": GroupSyntax("::group::{title}", "::endgroup::", github_data),
    "azure": GroupSyntax("##[group]{title}", "##[endgroup]", azure_data),
}
