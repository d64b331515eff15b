"""`pipeline watch` as a user runs it, on real git repositories: a poll that cannot be done fails
`--once` with the whole reason, and the state file stays out of the working tree. The watched branch has
no trigger rule for it, so a poll handles the commit without building anything (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.triggers.watch import state_path
from tests.helpers import app_project, git, init_git, run_cli

SOURCE_UNAVAILABLE = 4  # errors.SourceUnavailable


def _project(root: Path) -> str:
    """A repository whose pipeline triggers only on `release`: a poll of main builds nothing."""
    config = app_project(root, "127.0.0.1:5000/watch-cli", "FROM scratch\n")
    config.write_text(config.read_text().replace("    images:", '    triggers: [{branch: "^release$"}]\n    images:'))
    return init_git(root)


def test_watch_once_on_a_missing_branch_fails_with_the_reason(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _project(repo)
    done = run_cli(["watch", "--repo", str(repo), "--branch", "nope", "--once"], tmp_path, _state_env(tmp_path))
    assert done.code == SOURCE_UNAVAILABLE, done.output
    assert done.stderr.splitlines()[-1] == f"error: {repo}: no branch 'nope'"


def test_watch_once_on_a_missing_repository_fails_with_gits_whole_reason(tmp_path: Path) -> None:
    missing = tmp_path / "gone.git"
    done = run_cli(["watch", "--repo", str(missing), "--once"], tmp_path, _state_env(tmp_path))
    assert done.code == SOURCE_UNAVAILABLE, done.output
    assert done.stderr.splitlines()[-1] == f"error: {missing}: cannot clone: repository '{missing}' does not exist"


def test_watch_once_on_an_unreachable_url_names_it_without_its_credentials(tmp_path: Path) -> None:
    # Port 1 on loopback refuses at once: no network is needed to fail.
    url = "https://watcher:s3cr3t-t0ken@127.0.0.1:1/shop.git"
    done = run_cli(["watch", "--repo", url, "--once"], tmp_path, _state_env(tmp_path))
    assert done.code == SOURCE_UNAVAILABLE, done.output
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: https://127.0.0.1:1/shop.git: cannot clone: unable to access "), last
    assert "s3cr3t-t0ken" not in done.output and "watcher" not in last


def _state_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "xdg-state"), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def test_watch_keeps_its_state_under_xdg_state_home_not_in_the_working_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    head = _project(repo)
    env = _state_env(tmp_path)
    done = run_cli(["watch", "--repo", ".", "--branch", "main", "--once"], repo, env)
    assert done.code == 0, done.output
    assert "nothing to build" in done.stderr
    expected = state_path(tmp_path / "xdg-state" / "pipeline", str(repo), "main")
    assert expected.parent == tmp_path / "xdg-state" / "pipeline" / "watch"
    assert json.loads(expected.read_text())["last"] == head
    assert f"state file {expected}" in done.stderr
    assert not list(repo.glob(".pipeline-watch*")), "a state file in the working tree"
    assert git(repo, "status", "--porcelain") == ""

    # Another branch of the same repository, or the same branch elsewhere, has a file of its own.
    assert state_path(tmp_path / "s", str(repo), "dev") != state_path(tmp_path / "s", str(repo), "main")
    other = tmp_path / "other"
    other.mkdir()
    assert state_path(tmp_path / "s", str(other), "main") != state_path(tmp_path / "s", str(repo), "main")


def test_an_old_state_file_in_the_working_directory_is_moved_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    head = _project(repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    second = git(repo, "rev-parse", "HEAD")
    old = repo / ".pipeline-watch-main.json"
    old.write_text(json.dumps({"last": head, "history": [{"commit": head, "ok": True, "at": 0}]}))
    env = _state_env(tmp_path)
    expected = state_path(tmp_path / "xdg-state" / "pipeline", str(repo), "main")

    done = run_cli(["watch", "--repo", ".", "--branch", "main", "--once"], repo, env)
    assert done.code == 0, done.output
    assert f"moved the watch state {old} to {expected}" in done.stderr
    assert f"resuming after {head[:12]}" in done.stderr  # the old state was used: only the new commit
    assert f"main: building {second[:12]}" in done.stderr and f"building {head[:12]}" not in done.stderr
    assert not old.exists()
    assert [h["commit"] for h in json.loads(expected.read_text())["history"]] == [head, second]
    assert git(repo, "status", "--porcelain") == ""

    again = run_cli(["watch", "--repo", ".", "--branch", "main", "--once"], repo, env)
    assert again.code == 0 and "moved" not in again.stderr and "building" not in again.stderr
