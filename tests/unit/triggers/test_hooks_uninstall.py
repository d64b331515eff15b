"""`pipeline hooks uninstall` on a real git repository: it speaks of the hooks that exist (ours removed,
a foreign one left alone) and says nothing of hook names that were never there."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from tests.helpers import git


def _hooks(*args: str) -> list[str]:
    done = CliRunner().invoke(cli, ["hooks", *args])
    assert done.exit_code == 0, done.output
    return done.output.splitlines()


def test_uninstall_names_only_hooks_that_exist(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    hooks = tmp_path / ".git" / "hooks"
    foreign = hooks / "pre-push"
    foreign.write_text("#!/bin/sh\nexit 0\n")
    foreign.chmod(0o755)
    repo = ["--repo", str(tmp_path)]
    _hooks("install", *repo, "--hook", "post-commit")

    assert _hooks("uninstall", *repo) == [
        f"{hooks / 'post-commit'}: removed",
        f"{foreign}: not installed by pipeline; left alone",
    ]
    assert not (hooks / "post-commit").exists() and foreign.exists()
    assert _hooks("uninstall", *repo) == [f"{foreign}: not installed by pipeline; left alone"]

    foreign.unlink()
    assert _hooks("uninstall", *repo, "--hook", "post-merge") == [
        f"{hooks}: no hook is installed (post-merge); nothing to remove"
    ]
