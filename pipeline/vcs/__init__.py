"""The git checkout a run builds from: GitPython loaded quietly, and the facts a plan needs (commit,
branch, remote, dirty tree); the working tree read by plain `git` calls, and its paths as the config's
checks see them (probes)."""
