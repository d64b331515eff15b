"""Every git call of pipeline (nothing else imports GitPython or runs `git`): the checkout a run builds
from, GitPython loaded quietly, and the facts a plan needs (commit, branch, remote, dirty tree); blob ids
of tracked files (blobs), the history `explain` compares with (history), release tags (tags), the
repository triggers build from (source), refs as a shared commit point (refs); the working tree read by
plain `git` calls for `changed` (worktree), and its paths as the config's checks see them (probes)."""

# The `before` of a new ref and the `after` of a deleted one, as git and every forge write it.
ZERO_SHA = "0" * 40
