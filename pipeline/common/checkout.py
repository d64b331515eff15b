"""What the plan knows of the checkout it builds (HEAD's commit, branch, pull request, top), as plain
data: the CI reads it from its variables (pipeline.ci.checkout_of), the plan and `changed` use it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The `before` of a new ref and the `after` of a deleted one, as git and every forge write it (vcs and the
# CLI's `trigger --before` default take it from here: the CLI imports no vcs).
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Checkout:
    """What the plan knows of the checkout it builds: HEAD's commit, the branch (as templates see it), the
    pull/merge request number and the working tree's top."""

    sha: str | None
    branch: str | None
    pr: str | None
    root: Path | None
