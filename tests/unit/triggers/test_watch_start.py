"""`pipeline watch` says where it starts: fresh (the branch's head), or after the commit its state file
recorded, on a real git repository (the commit handler is the watcher's seam; no build runs here)."""

from __future__ import annotations

from pathlib import Path

from pipeline.common.reporting import Forward
from pipeline.triggers.watch import Watcher, WatchState
from tests.helpers import git


def _commit(repo: Path, text: str) -> str:
    (repo / "file.txt").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", text)
    return git(repo, "rev-parse", "HEAD")


def _watch_once(repo: Path, state: Path) -> tuple[list[str], list[str]]:
    """One poll of a new watcher (as after a restart): its log lines and the commits it handled."""
    lines: list[str] = []
    handled: list[str] = []

    def handle(_before: str, after: str) -> bool:
        handled.append(after)
        return True

    Watcher.for_repository(
        str(repo), repo / "cache", "main", WatchState.load(state), handle, Forward(lines.append)
    ).run(1, once=True)
    return lines, handled


def test_watch_says_whether_it_starts_fresh_or_resumes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = _commit(repo, "one")
    state = tmp_path / "watch.json"

    lines, handled = _watch_once(repo, state)
    assert lines[0] == f"starting fresh (state file {state}): the first poll builds the head of main"
    assert handled == [first]

    second = _commit(repo, "two")
    lines, handled = _watch_once(repo, state)
    assert lines[0] == f"resuming after {first[:12]} (state file {state})"
    assert handled == [second]
