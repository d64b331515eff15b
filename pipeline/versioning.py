"""Semantic-version tags: the tag set of a build, and when a floating tag may move. Pure: no I/O.

Rules (decided against the repository's tag list, the source of truth):
- `X.Y.Z` is immutable; `sha-<commit>` names one commit's build (`sha-<commit>-<version>` for a build whose
  inputs use the version: one digest per commit and version inputs).
- `X.Y` moves only if X.Y.Z is the highest stable X.Y.*, `X` only if it is the highest stable X.*.*,
  `latest` only if it is the highest stable version in the repository.
- A prerelease gets its own tag only. Build metadata is dropped (`+` is not valid in a tag).
- A variant suffix (`-windows`) is appended to every tag and versions are compared within that suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.errors import UsageError

if TYPE_CHECKING:
    # Imported where a version is parsed or made: planning a run without one (`pipeline changed`, which
    # commit hooks run) needs only this module's tag rules, and semver is ~4 ms of its start.
    import semver

SHA_TAG_LENGTH = 12
FloatingKind = Literal["minor", "major", "latest"]
FLOATING_KINDS: tuple[FloatingKind, ...] = ("minor", "major", "latest")
# Names that only the release rules may write: X, X.Y, X.Y.Z[-pre], latest.
RESERVED_TAG = re.compile(r"^(latest|\d+|\d+\.\d+|\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$")
# The run's own tags: input tags (`inputs-`, a pull request's `inputs-pr-`) and build tags (`sha-`, a pull
# request's `pr-sha-`). Later builds read them (reuse, cache sources), so an extra tag, which a pull
# request's own pipelines.yaml (or its branch name) could set, must never be one (docs/reuse-and-trust.md).
RESERVED_TAG_PREFIXES = ("inputs-", "sha-", "pr-sha-")
_VERSION_TAG = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")


@dataclass(frozen=True)
class FloatingTag:
    kind: FloatingKind
    name: str


@dataclass(frozen=True)
class TagSet:
    """Every tag one image of a run gets.

    `release` (X.Y.Z) and `build` (sha-…) name this build only; `floating` are candidates that move
    only by the rules above; `extra` are rendered templates applied with the floating ones.
    """

    version: semver.Version | None
    suffix: str
    release: str | None
    build: tuple[str, ...]
    floating: tuple[FloatingTag, ...]
    extra: tuple[str, ...] = ()

    @property
    def primary(self) -> str:
        """The tag the engine pushes under: the commit's tag, else the release tag, else latest."""
        if self.build:
            return self.build[0]
        if self.release:
            return self.release
        return f"latest{self.suffix}"

    @property
    def all(self) -> tuple[str, ...]:
        names = [*self.build, *([self.release] if self.release else []), *(f.name for f in self.floating)]
        names += self.extra
        if not names:
            names.append(self.primary)
        return tuple(dict.fromkeys(names))


def parse_version(text: str) -> semver.Version:
    """Parse X.Y.Z[-pre][+meta] (a leading 'v' is accepted); raise UsageError otherwise."""
    import semver

    raw = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(raw)
    except ValueError:
        raise UsageError(f"version '{text}' is not a semantic version X.Y.Z[-prerelease]") from None


def version_tag(version: semver.Version) -> str:
    """The tag for a version. Build metadata ('+meta') is dropped: '+' is not valid in a tag, and by
    semver it does not change precedence, so 1.2.3+a and 1.2.3+b are the same release."""
    return str(version.replace(build=None))


def sha_tag(git_sha: str) -> str:
    return f"sha-{git_sha[:SHA_TAG_LENGTH]}"


def tag_set(
    version: semver.Version | None,
    git_sha: str | None,
    *,
    suffix: str = "",
    floating: Iterable[FloatingKind] = FLOATING_KINDS,
    extra: Iterable[str] = (),
    dirty: bool = False,
    versioned_build: bool = False,
) -> TagSet:
    """`versioned_build`: the build's inputs use the version, so a versioned run's build is not the commit's
    unversioned one and gets its own build tag, `sha-<commit>-<version>`."""
    release = f"{version_tag(version)}{suffix}" if version is not None else None
    candidates: list[FloatingTag] = []
    if version is not None and not version.prerelease:
        names = {"minor": f"{version.major}.{version.minor}", "major": str(version.major), "latest": "latest"}
        candidates = [FloatingTag(kind, names[kind] + suffix) for kind in FLOATING_KINDS if kind in set(floating)]
    # A build of uncommitted changes must not take the commit's own tag.
    build_version = f"-{version_tag(version)}" if versioned_build and version is not None else ""
    build = (sha_tag(git_sha) + build_version + ("-dirty" if dirty else "") + suffix,) if git_sha else ()
    if version is not None and version.prerelease:
        extra = ()  # a prerelease gets only its own tag
    if version is None and not git_sha:
        # Outside git, without a version, `latest` is the only name a user sees. It is published like a
        # floating tag, after every image succeeded; the build itself is pushed under its input digest.
        extra = (f"latest{suffix}", *extra)
    return TagSet(version, suffix, release, build, tuple(candidates), tuple(dict.fromkeys(extra)))


def versions_in(tags: Iterable[str], suffix: str = "") -> dict[str, semver.Version]:
    """The tags of a repository that are versions with this suffix, keyed by tag."""
    import semver

    found: dict[str, semver.Version] = {}
    for tag in tags:
        if suffix and not tag.endswith(suffix):
            continue
        core = tag[: len(tag) - len(suffix)] if suffix else tag
        if _VERSION_TAG.match(core):
            try:
                found[tag] = semver.Version.parse(core)
            except ValueError:
                continue
    return found


@dataclass(frozen=True)
class FloatingDecision:
    tag: FloatingTag
    moves: bool
    reason: str


def decide_floating(tags: TagSet, existing_tags: Iterable[str]) -> list[FloatingDecision]:
    """For each floating candidate, whether it moves to this version, and why."""
    version = tags.version
    if version is None:
        return []
    new = version.replace(build=None)
    stable = [v for v in versions_in(existing_tags, tags.suffix).values() if not v.prerelease] + [new]
    decisions = []
    for candidate in tags.floating:
        if candidate.kind == "minor":
            peers = [v for v in stable if (v.major, v.minor) == (new.major, new.minor)]
            scope = f"{new.major}.{new.minor}.x"
        elif candidate.kind == "major":
            peers = [v for v in stable if v.major == new.major]
            scope = f"{new.major}.x"
        else:
            peers = stable
            scope = "stable versions"
        highest = max(peers)
        if highest == new:
            decisions.append(FloatingDecision(candidate, True, f"{new} is the highest of the {scope}"))
        else:
            decisions.append(FloatingDecision(candidate, False, f"{highest} is higher than {new} among the {scope}"))
    return decisions


Bump = Literal["major", "minor", "patch"]


def next_version(
    current: semver.Version | None, bump: Bump, pre: str | None = None, existing: Iterable[semver.Version] = ()
) -> semver.Version:
    """The version after the latest stable `current` (0.0.0 when there is none); with `pre`, the next
    `X.Y.Z-pre.N` after the `existing` prereleases of that version."""
    import semver

    base = current.finalize_version() if current is not None else semver.Version(0, 0, 0)
    target = {"major": base.bump_major, "minor": base.bump_minor, "patch": base.bump_patch}[bump]()
    return target if pre is None else next_prerelease(target, pre, existing)


def next_prerelease(target: semver.Version, pre: str, existing: Iterable[semver.Version] = ()) -> semver.Version:
    """`target-pre.N` with N one past the highest existing `target-pre.*`."""
    numbers = [
        int(v.prerelease.split(".")[-1])
        for v in existing
        if v.finalize_version() == target
        and v.prerelease
        and v.prerelease.startswith(f"{pre}.")
        and v.prerelease.split(".")[-1].isdigit()
    ]
    return target.replace(prerelease=f"{pre}.{max(numbers, default=0) + 1}")
