"""vcs.info.read_git_info: a run's checkout read by plain `git` calls, whatever the user's git configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import EnvironmentProblem
from pipeline.vcs.info import read_git_info

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, input=stdin, env={**os.environ, **GIT_ENV}
    ).stdout.strip()


def user_config(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Settings as if in the user's ~/.gitconfig (git's GIT_CONFIG_COUNT variables)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", str(len(settings)))
    for i, (key, value) in enumerate(settings.items()):
        monkeypatch.setenv(f"GIT_CONFIG_KEY_{i}", key.replace("_", "."))
        monkeypatch.setenv(f"GIT_CONFIG_VALUE_{i}", value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "pipelines.yaml").write_text("pipelines: {}\n")
    (root / "README").write_text("one\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    return root


@pytest.mark.skipif(shutil.which("gpg") is None, reason="git shows a signature through gpg")
def test_a_signed_head_is_read_when_the_user_shows_signatures(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With log.showSignature on, `git log` prints gpg's lines before the commit time (GitHub signs its merge
    commits): the time is still HEAD's, not a traceback."""
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    commit = (
        f"tree {tree}\nparent {git(repo, 'rev-parse', 'HEAD')}\n"
        "author t <t@example.com> 1700000000 +0000\ncommitter t <t@example.com> 1700000000 +0000\n"
        "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\nsigned\n"
    )
    sha = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=commit)
    git(repo, "update-ref", "HEAD", sha)
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "gnupg"))
    user_config(monkeypatch, log_showSignature="true")
    assert (
        "gpg:"
        in subprocess.run(["git", "log", "-1", "--format=%cI", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
        + subprocess.run(["git", "log", "-1", "HEAD"], cwd=repo, capture_output=True, text=True).stderr
    )

    info = read_git_info(repo / "app")

    assert info is not None
    assert info.sha == sha
    assert info.committed_at == datetime.fromtimestamp(1700000000, UTC)


def test_a_change_outside_the_configs_directory_makes_the_tree_dirty(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """diff.relative on: `git diff` run in the config's directory would see only the changes below it; the
    tree is dirty wherever a tracked file changed (a release reuses its tag only from a clean tree)."""
    user_config(monkeypatch, diff_relative="true")
    (repo / "README").write_text("two\n")
    info = read_git_info(repo / "app")
    assert info is not None and info.dirty
    git(repo, "add", "README")
    staged = read_git_info(repo / "app")
    assert staged is not None and staged.dirty
    git(repo, "commit", "-q", "-m", "two")
    clean = read_git_info(repo / "app")
    assert clean is not None and not clean.dirty


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the repository to another user needs root")
def test_a_repository_git_refuses_to_read_is_an_error_not_outside_git(repo: Path) -> None:
    """safe.directory: git will not read a repository another user owns (CI containers); the run says so
    instead of building as if outside git (no commit, no revision label)."""
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 65534, 65534)
    with pytest.raises(EnvironmentProblem, match="git refuses to read this repository: detected dubious ownership"):
        read_git_info(repo / "app")


def test_outside_git_a_bare_repository_and_no_commit_read_as_none(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    assert read_git_info(outside) is None
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    assert read_git_info(bare) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert read_git_info(empty) is None
