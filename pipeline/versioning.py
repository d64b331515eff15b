"""Semantic-version tag sets: which tags an image gets for a version. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import semver

from pipeline.errors import UsageError

SHA_TAG_LENGTH = 12


@dataclass(frozen=True)
class TagSet:
    """`immutable` tags name this build only (X.Y.Z, sha-…); `floating` ones move between builds."""

    immutable: tuple[str, ...]
    floating: tuple[str, ...]

    @property
    def primary(self) -> str:
        """The tag the image is first pushed under; never a floating one when there is a choice."""
        return (self.immutable or self.floating)[0]

    @property
    def all(self) -> tuple[str, ...]:
        return self.immutable + self.floating


def parse_version(text: str) -> semver.Version:
    """Parse X.Y.Z[-pre][+meta] (a leading 'v' is accepted); raise UsageError otherwise."""
    raw = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(raw)
    except ValueError:
        raise UsageError(f"--version '{text}' is not a semantic version X.Y.Z[-prerelease]") from None


def version_tag(version: semver.Version) -> str:
    """The Docker tag for a version. Build metadata ('+meta') is dropped: '+' is not valid in a tag,
    and by semver it does not change precedence, so 1.2.3+a and 1.2.3+b are the same release."""
    return str(version.replace(build=None))


def sha_tag(git_sha: str) -> str:
    return f"sha-{git_sha[:SHA_TAG_LENGTH]}"


def tag_set(version: semver.Version | None, git_sha: str | None) -> TagSet:
    immutable: list[str] = []
    floating: list[str] = []
    if version is not None:
        immutable.append(version_tag(version))
        if not version.prerelease:
            floating += [f"{version.major}.{version.minor}", str(version.major), "latest"]
    if git_sha:
        immutable.append(sha_tag(git_sha))
    if not immutable and not floating:
        # Outside git and without --version there is nothing better to name the build by.
        floating.append("latest")
    return TagSet(tuple(immutable), tuple(floating))
