"""`pipelines.lock`: the digest each external base image builds on, per reference and platform, written by
`pipeline bases --update` beside the pipelines file. Deterministic, reviewable text (one entry per
reference and platform, sorted); while it exists, builds stand on these digests, not the registry's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.bases.lock_file import LOCK_NAME as LOCK_NAME
from pipeline.bases.lock_file import lock_path as lock_path
from pipeline.errors import ConfigError
from pipeline.files import read_regular_file, write_text
from pipeline.registry.platforms import platform_text
from pipeline.registry.reference import parse_reference

LOCK_VERSION = 1
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEADER = (
    "# The digest each base image of the pipelines file builds on, per platform: written by\n"
    "# `pipeline bases --update`. While this file exists, builds use these digests, not what the tags\n"
    "# point at now; update it (and review the diff) to move a base.\n"
)

LockKey = tuple[str, str, str | None]  # (reference, platform, Windows build or None)


@dataclass(frozen=True)
class LockEntry:
    reference: str  # as the Dockerfile names it (`:latest` written out when it names no tag)
    platform: str  # os/arch[/variant]
    os_version: str | None  # the Windows version a variant asks for; None elsewhere
    digest: str  # the image the build stands on (an index's child for the platform)
    index: str | None = None  # the index the reference pointed at, when it is one

    @property
    def key(self) -> LockKey:
        return (self.reference, self.platform, self.os_version)


@dataclass(frozen=True)
class BaseLock:
    entries: Mapping[LockKey, LockEntry]
    path: Path | None = None

    @classmethod
    def of(cls, entries: Iterable[LockEntry], path: Path | None = None) -> BaseLock:
        return cls({entry.key: entry for entry in entries}, path)

    @classmethod
    def load(cls, path: Path) -> BaseLock | None:
        """The lock at `path`; None when there is none. A malformed one is a ConfigError naming the file and
        the entry (builds never fall back to floating bases when a lock exists but cannot be read)."""
        if not path.exists() and not path.is_symlink():
            return None
        import yaml  # here: `pipeline changed` finds the lock's path through this module without PyYAML

        text = read_regular_file(path, "lock file").decode("utf-8", errors="replace")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(data, dict) or type(version) is not int or version != LOCK_VERSION:  # `true` == 1
            raise ConfigError(f"{path}: not a pipelines.lock of version {LOCK_VERSION} (key 'version')")
        rows = data.get("bases")
        rows = [] if rows is None else rows  # `bases:` with nothing under it; `{}` or `""` is a mistake
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: key 'bases' must be a list")
        entries: dict[LockKey, LockEntry] = {}
        for number, row in enumerate(rows, 1):
            entry = _entry(path, number, row)
            if entry.key in entries:
                shown = f"{entry.reference} ({platform_text(entry.platform, entry.os_version)})"
                raise ConfigError(
                    f"{path}: bases entry {number}: {shown} is listed twice; keep one entry per reference and platform"
                )
            entries[entry.key] = entry
        return cls(entries, path)

    def get(self, reference: str, platform: str, os_version: str | None) -> LockEntry | None:
        return self.entries.get((reference, platform, os_version))

    def render(self) -> str:
        lines = [_HEADER.rstrip("\n"), f"version: {LOCK_VERSION}", "bases:" if self.entries else "bases: []"]
        for key in sorted(self.entries, key=lambda k: (k[0], k[1], k[2] or "")):
            entry = self.entries[key]
            lines.append(f"- reference: {_quoted(entry.reference)}")
            lines.append(f"  platform: {_quoted(entry.platform)}")
            if entry.os_version is not None:
                lines.append(f"  os_version: {_quoted(entry.os_version)}")
            lines.append(f"  digest: {entry.digest}")
            if entry.index is not None:
                lines.append(f"  index: {entry.index}")
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        write_text(path, self.render(), "lock file")


def _quoted(text: str) -> str:
    """A YAML scalar that reads back as exactly `text` (references hold ':' and '@')."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _entry(path: Path, number: int, row: Any) -> LockEntry:
    where = f"{path}: bases entry {number}"
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = sorted(set(row) - {"reference", "platform", "os_version", "digest", "index"})
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'")
    values = {}
    for name in ("reference", "platform", "digest"):
        value = row.get(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: key '{name}' must be a non-empty string")
        values[name] = value
    for name in ("digest", "index"):
        value = row.get(name)
        if value is not None and (not isinstance(value, str) or not _DIGEST.fullmatch(value)):
            raise ConfigError(f"{where}: key '{name}' must be a sha256 digest")
    os_version = row.get("os_version")
    if os_version is not None and not isinstance(os_version, str):
        raise ConfigError(f"{where}: key 'os_version' must be a string")
    reference = _reference(where, values["reference"])
    return LockEntry(reference, values["platform"], os_version, values["digest"], row.get("index"))


def _reference(where: str, text: str) -> str:
    """The reference as the resolver names a base (`busybox` is `docker.io/library/busybox:latest`), so a
    hand-written entry locks what the Dockerfile pulls instead of silently matching nothing."""
    try:
        ref = parse_reference(text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'reference': {exc}") from None
    return str(ref if ref.tag or ref.digest else replace(ref, tag="latest"))
