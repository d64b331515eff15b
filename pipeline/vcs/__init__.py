"""The git checkout a run builds from: GitPython loaded quietly, and the facts a plan needs (commit,
branch, remote, dirty tree)."""
