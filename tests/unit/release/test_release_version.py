"""choose_version and the tagging refusals on real (temporary) git repositories: no engine, no registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.release.cut import check_can_tag, choose_version, tag_refusals
from pipeline.vcs.tags import ReleaseRepo
from tests.helpers import git, init_git


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    (tmp_path / "README").write_text("x\n")
    init_git(tmp_path)
    return tmp_path


def commit(root: Path, message: str) -> None:
    (root / "README").write_text((root / "README").read_text() + message + "\n")
    git(root, "commit", "-qam", message)


def tag(root: Path, *names: str) -> None:
    for name in names:
        git(root, "tag", "-a", name, "-m", f"Release {name}")


def chosen(root: Path, bump: str | None = None, version: str | None = None, pre: str | None = None) -> str:
    result = choose_version(ReleaseRepo(root), bump, version, pre)  # type: ignore[arg-type]
    return f"{result.version}{' rerun' if result.rerun else ''}"


@pytest.mark.parametrize("bump", ["patch", "minor", "major", "auto"])
def test_a_stable_request_on_a_released_head_is_that_release(repo_dir: Path, bump: str) -> None:
    tag(repo_dir, "v0.1.0")
    commit(repo_dir, "fix: carts")
    tag(repo_dir, "v0.1.1")
    assert chosen(repo_dir, bump) == "0.1.1 rerun"
    result = choose_version(ReleaseRepo(repo_dir), bump, None, None)  # type: ignore[arg-type]
    assert result.reason == "re-run of release 0.1.1: v0.1.1 is already on HEAD; only what is unfinished is done"
    assert check_can_tag(ReleaseRepo(repo_dir), result) is True


def test_a_prerelease_request_on_a_candidate_head_is_that_candidate(repo_dir: Path) -> None:
    tag(repo_dir, "v0.2.0-rc.1")
    assert chosen(repo_dir, "minor", pre="rc") == "0.2.0-rc.1 rerun"
    assert chosen(repo_dir, "auto", pre="rc") == "0.2.0-rc.1 rerun"
    assert chosen(repo_dir, version="0.2.0", pre="rc") == "0.2.0-rc.1 rerun"
    tag(repo_dir, "v0.2.0-rc.2")  # the highest candidate on HEAD
    assert chosen(repo_dir, "minor", pre="rc") == "0.2.0-rc.2 rerun"


def test_another_kind_on_head_is_cut_as_usual(repo_dir: Path) -> None:
    tag(repo_dir, "v0.1.0-rc.1")
    assert chosen(repo_dir, "minor") == "0.1.0"  # the tested candidate becomes the release
    assert chosen(repo_dir, "minor", pre="beta") == "0.1.0-beta.1"
    assert chosen(repo_dir, version="0.1.0") == "0.1.0"


def test_a_candidate_of_a_released_head_is_refused(repo_dir: Path) -> None:
    tag(repo_dir, "v0.1.0")
    with pytest.raises(UsageError, match=r"^HEAD is already released as v0\.1\.0; a prerelease \(--pre rc\)"):
        chosen(repo_dir, "patch", pre="rc")
    assert chosen(repo_dir, version="0.1.1", pre="rc") == "0.1.1-rc.1"  # explicit: the user's call


def test_an_explicit_version_already_on_head_says_it_is_a_rerun(repo_dir: Path) -> None:
    tag(repo_dir, "v1.0.0")
    result = choose_version(ReleaseRepo(repo_dir), None, "1.0.0", None)
    assert result.rerun and result.reason.startswith("--version 1.0.0: re-run of release 1.0.0")
    assert chosen(repo_dir, version="1.0.1") == "1.0.1"


def test_a_new_commit_after_a_release_bumps(repo_dir: Path) -> None:
    tag(repo_dir, "v0.1.0", "v0.1.1-rc.1")
    commit(repo_dir, "feat: wishlist")
    assert chosen(repo_dir, "patch") == "0.1.1"
    assert chosen(repo_dir, "auto") == "0.2.0"
    assert chosen(repo_dir, "patch", pre="rc") == "0.1.1-rc.2"


def test_bump_auto_without_releasable_commits_is_still_refused(repo_dir: Path) -> None:
    tag(repo_dir, "v0.1.0")
    commit(repo_dir, "docs: typo")
    with pytest.raises(UsageError, match="no feat, fix or breaking commit since v0.1.0"):
        chosen(repo_dir, "auto")


def test_every_tagging_refusal_is_reported_in_order(repo_dir: Path) -> None:
    tag(repo_dir, "v1.0.0")
    commit(repo_dir, "next")
    (repo_dir / "untracked.txt").write_text("x")
    repo = ReleaseRepo(repo_dir)
    refusals = [str(r) for r in tag_refusals(repo, choose_version(repo, None, "1.0.0", None))]
    assert refusals[0] == "the working tree has uncommitted changes (untracked.txt); commit or stash them first"
    assert refusals[1].startswith("git tag v1.0.0 already exists on commit ")
    assert len(refusals) == 2
