"""Every git call of pipeline (nothing else imports GitPython or runs `git`): the checkout a run builds
from, GitPython loaded quietly, and the facts a plan needs (commit, branch, remote, dirty tree); blob ids
of tracked files (blobs), the history `explain` compares with (history), release tags (tags), the
repository triggers build from (source), refs as a shared commit point (refs); the working tree read by
plain `git` calls for `changed` (worktree), and its paths as the config's checks see them (probes)."""

from pipeline.common.checkout import ZERO_SHA

__all__ = ["ZERO_SHA"]
