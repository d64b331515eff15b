"""Untracked files count as changes for `changed` and `run --since`, as they do for the input digest:
a new file in a context that neither .gitignore nor the image's ignore file excludes affects the
image (`plan` already said build; `changed` said nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.plan import RunContext, make_plan
from pipeline.triggers.changed import affected_since
from pipeline.vcs.worktree import WorkTree
from tests.helpers import git, init_git, write_project
from tests.unit.cli.test_changed_reasons import CONFIG, IMAGES
from tests.unit.config.test_config_errors import run_main


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """shop: base, tools, app (on both; its .dockerignore excludes *.md), committed."""
    write_project(tmp_path, CONFIG, IMAGES)
    (tmp_path / "images/app/.dockerignore").write_text("*.md\n")
    init_git(tmp_path)
    return tmp_path


def _untracked(project: Path) -> None:
    (project / ".gitignore").write_text("*.log\n")
    git(project, "add", ".gitignore")
    git(project, "commit", "-qm", "gitignore")
    (project / "images/tools/new.sh").write_text("echo new\n")  # counts
    (project / "images/tools/build.log").write_text("ignored by .gitignore\n")
    (project / "images/app/NOTES.md").write_text("ignored by the app's .dockerignore\n")
    (project / "images/app/sub").mkdir()
    (project / "images/app/sub/extra.py").write_text("print()\n")  # counts, in a new directory


def test_changed_names_untracked_files_not_ignored(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _untracked(project)
    code, output = run_main(["changed", "--since", "HEAD", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    images = {row["image"]: row for row in json.loads(output)["images"]}
    assert list(images) == ["shop/tools", "shop/app"]
    assert images["shop/tools"]["files"] == ["images/tools/new.sh"]
    assert images["shop/tools"]["reason"] == "images/tools/new.sh changed"
    assert images["shop/app"]["files"] == ["images/app/sub/extra.py"]
    assert images["shop/app"]["reason"] == "images/app/sub/extra.py changed; depends on shop/tools"


def test_changed_from_a_subdirectory_lists_untracked_files_of_the_whole_tree(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """git lists untracked files below the directory it runs in unless asked for the whole tree."""
    _untracked(project)
    code, output = run_main(
        ["changed", "-f", str(project / "pipelines.yaml"), "--since", "HEAD"],
        capsys,
        monkeypatch,
        project / "images/app",
    )
    assert code == 0, output
    assert output.splitlines() == [
        f"{'shop/tools':<30} images/tools/new.sh changed",
        f"{'shop/app':<30} images/app/sub/extra.py changed; depends on shop/tools",
    ]


def test_tracked_and_untracked_changes_together_in_git_order(project: Path) -> None:
    (project / "images/base/b.txt").write_text("untracked\n")
    (project / "images/base/Dockerfile").write_text("FROM scratch\nENV V=2\n")  # tracked, edited
    (project / "images/base/a.txt").write_text("untracked\n")
    tree = WorkTree.find(project)
    assert tree is not None
    assert tree.changes_since("HEAD", "here") == ["images/base/Dockerfile", "images/base/a.txt", "images/base/b.txt"]


def test_run_since_counts_untracked_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --since` narrows its plan with affected_since: the same rule."""
    _untracked(project)
    monkeypatch.chdir(project)
    config = load_config(project / "pipelines.yaml")
    plan = make_plan(config.spec, config.base_dir, [], RunContext(), config.positions)
    affected = affected_since(config, plan, "HEAD")
    assert [(a.key, a.reason) for a in affected] == [
        ("shop/tools", "images/tools/new.sh changed"),
        ("shop/app", "images/app/sub/extra.py changed; depends on shop/tools"),
    ]


def test_an_untracked_file_added_after_the_cache_was_written_is_named_on_a_hit(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache holds what the config says of each image, never which files changed: git is asked
    about untracked files on every run."""
    code, output = run_main(["changed", "--since", "HEAD"], capsys, monkeypatch, project)
    assert (code, output) == (0, "nothing changed since HEAD affects an image\n")
    assert (project / ".git/pipeline/changed-cache.json").is_file()
    (project / "images/base/new.txt").write_text("new\n")
    code, output = run_main(["changed", "--since", "HEAD"], capsys, monkeypatch, project)
    assert code == 0, output
    assert output.splitlines()[0] == f"{'shop/base':<30} images/base/new.txt changed"
