"""Releasing: choosing a version, its git tag, conventional commits, publishing tag changes (journalled,
all-or-nothing), promotion between registries and the view of a repository's tags."""
