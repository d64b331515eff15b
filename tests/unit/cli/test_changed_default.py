"""`changed` without --since compares with the commit the branch forked from its upstream (`git
merge-base HEAD @{upstream}`), else with HEAD~1; on a repository's first commit every image counts
as changed. It used to refuse to run without --since."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import commit_files, git, init_git, run_cli, write_project
from tests.unit.cli.test_changed_reasons import CONFIG, IMAGES
from tests.unit.config.test_config_errors import run_main


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path / "work", CONFIG, IMAGES)
    init_git(tmp_path / "work")
    return tmp_path / "work"


def _rows(output: str) -> dict[str, object]:
    data = json.loads(output)
    return {**data, "images": [(row["image"], row["reason"]) for row in data["images"]]}


def test_a_branch_with_an_upstream_is_compared_with_its_merge_base(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commits on a feature branch off origin/main: both count (HEAD~1 would show only the last),
    and a commit pushed to main after the fork does not."""
    fork = git(project, "rev-parse", "HEAD")
    git(project.parent, "clone", "-q", "--bare", str(project), "origin.git")
    git(project, "remote", "add", "origin", str(project.parent / "origin.git"))
    git(project, "fetch", "-q", "origin")
    git(project, "checkout", "-q", "-b", "feature", "--track", "origin/main")
    commit_files(project, {"images/tools/tool.sh": "echo\n"})
    commit_files(project, {"images/base/Dockerfile": "FROM scratch\nENV V=2\n"})
    (project / "images/app/new.txt").write_text("untracked\n")
    code, output = run_main(["changed", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    assert _rows(output) == {
        "since": fork,
        "compared_with": f"merge-base with origin/main ({fork[:12]})",
        "images": [
            ("shop/base", "images/base/Dockerfile changed"),
            ("shop/tools", "images/tools/tool.sh changed"),
            ("shop/app", "images/app/new.txt changed; depends on shop/base; depends on shop/tools"),
        ],
    }
    code, text = run_main(["changed"], capsys, monkeypatch, project)
    assert code == 0, text  # the results on stdout, then on stderr what they were compared with
    assert text.splitlines()[-1] == f"since: merge-base with origin/main ({fork[:12]})"


def test_a_branch_without_an_upstream_is_compared_with_head_1(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_files(project, {"images/tools/tool.sh": "echo\n"})
    commit_files(project, {"images/base/Dockerfile": "FROM scratch\nENV V=2\n"})
    code, output = run_main(["changed", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    assert _rows(output) == {
        "since": "HEAD~1",
        "compared_with": "HEAD~1",
        "images": [("shop/base", "images/base/Dockerfile changed"), ("shop/app", "depends on shop/base")],
    }
    git(project, "checkout", "-q", "--detach")  # no branch, no upstream: HEAD~1 too
    code, output = run_main(["changed", "--json"], capsys, monkeypatch, project)
    assert (code, json.loads(output)["since"]) == (0, "HEAD~1")


def test_on_the_first_commit_every_image_counts_as_changed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = "no earlier commit to compare with: everything is built"
    code, output = run_main(["changed", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    assert _rows(output) == {
        "since": None,
        "compared_with": "no earlier commit (everything counts as changed)",
        "images": [("shop/base", everything), ("shop/tools", everything), ("shop/app", everything)],
    }
    code, text = run_main(["changed"], capsys, monkeypatch, project)
    assert code == 0, text
    assert text.splitlines() == [
        f"{'shop/base':<30} {everything}",
        f"{'shop/tools':<30} {everything}",
        f"{'shop/app':<30} {everything}",
        "since: no earlier commit (everything counts as changed)",
    ]


def test_an_explicit_since_is_kept_as_given(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_main(["changed", "--since", "HEAD", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    assert json.loads(output) == {"since": "HEAD", "compared_with": "HEAD", "images": []}
    code, text = run_main(["changed", "--since", "HEAD"], capsys, monkeypatch, project)
    assert (code, text) == (0, "nothing changed since HEAD affects an image\n")


def test_help_states_the_default(project: Path) -> None:
    done = run_cli(["changed", "--help"], project)
    assert done.code == 0, done.output
    text = " ".join(done.stdout.split())
    assert "default: the merge-base with the branch's upstream, else HEAD~1" in text
    assert "Without --since: the commit the branch forked from its upstream (git merge-base HEAD @{upstream})" in text
