"""Conventional Commits: which semver bump a list of commit messages calls for. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.versioning import Bump

_HEADER = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\([^)]*\))?(?P<bang>!)?:\s")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s", re.MULTILINE)


def bump_for(message: str) -> Bump | None:
    header = message.splitlines()[0] if message else ""
    match = _HEADER.match(header)
    if _BREAKING_FOOTER.search(message) or (match and match.group("bang")):
        return "major"
    if not match:
        return None
    kind = match.group("type").lower()
    if kind == "feat":
        return "minor"
    if kind == "fix":
        return "patch"
    return None


def bump_from_commits(messages: Iterable[str]) -> Bump | None:
    """The largest bump any message calls for: major > minor > patch; None if none does."""
    rank = {"patch": 1, "minor": 2, "major": 3}
    best: Bump | None = None
    for message in messages:
        bump = bump_for(message)
        if bump and (best is None or rank[bump] > rank[best]):
            best = bump
    return best
