"""`pipeline changed` gives every reason an image is affected: its own changed files (the first three
named, then how many more; --json lists them) and `depends on X` for each affected image it builds on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import commit_files, init_git, run_cli, shop_config, write_project
from tests.unit.config.test_config_errors import run_main

CONFIG = (
    shop_config("127.0.0.1:5000/reasons", ("base", "tools"), network=None)
    + """\
      app:
        context: images/app
        build_args: {BASE: "{{ images.base }}", TOOLS: "{{ images.tools }}"}
        paths: [shared/*.cfg]
"""
)
IMAGES = {
    "base": "FROM scratch\n",
    "tools": "FROM scratch\n",
    "app": "ARG BASE\nARG TOOLS\nFROM ${BASE}\nCOPY --from=${TOOLS} / /\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, CONFIG, IMAGES)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/app.cfg").write_text("v1\n")
    (tmp_path / "images/app/.dockerignore").write_text("*.md\n")
    init_git(tmp_path)
    return tmp_path


def test_an_image_changed_by_its_files_and_two_dependencies_gives_every_reason(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = [f"images/app/src/f{i}.txt" for i in range(5)]
    commit_files(
        project,
        {
            **dict.fromkeys(own, "new\n"),
            "images/app/NOTES.md": "ignored\n",
            "shared/app.cfg": "v2\n",
            "images/base/Dockerfile": "FROM scratch\nENV V=2\n",
            "images/tools/tool.sh": "echo\n",
        },
    )
    code, output = run_main(["changed", "--since", "HEAD~1", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    images = {row["image"]: row for row in json.loads(output)["images"]}
    assert list(images) == ["shop/base", "shop/tools", "shop/app"]
    app = images["shop/app"]
    # git lists paths in byte order: images/... before shared/...
    assert app["files"] == [*own, "shared/app.cfg"]
    assert app["files_total"] == 6
    assert app["depends_on"] == ["shop/base", "shop/tools"]
    assert app["reason"] == (
        "images/app/src/f0.txt changed; images/app/src/f1.txt changed; images/app/src/f2.txt changed; "
        "3 more files changed; depends on shop/base; depends on shop/tools"
    )
    assert images["shop/base"]["reason"] == "images/base/Dockerfile changed"
    assert images["shop/base"]["depends_on"] == []
    assert images["shop/tools"]["files"] == ["images/tools/tool.sh"]

    code, text = run_main(["changed", "--since", "HEAD~1"], capsys, monkeypatch, project)
    assert code == 0, text
    assert text.splitlines() == [
        f"{'shop/base':<30} images/base/Dockerfile changed",
        f"{'shop/tools':<30} images/tools/tool.sh changed",
        f"{'shop/app':<30} {app['reason']}",
    ]


def test_a_glob_only_change_and_a_dependency_name_both(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_files(project, {"shared/app.cfg": "v2\n", "images/tools/tool.sh": "echo\n"})
    code, output = run_main(["changed", "--since", "HEAD~1", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    app = {row["image"]: row for row in json.loads(output)["images"]}["shop/app"]
    assert app["reason"] == "shared/app.cfg changed (paths: glob); depends on shop/tools"
    assert (app["files"], app["files_total"], app["depends_on"]) == (["shared/app.cfg"], 1, ["shop/tools"])


def test_a_pipelines_file_in_a_subdirectory_of_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The working tree is found upwards from pipelines.yaml, as git finds it (it said 'not a git
    repository' when pipelines.yaml was not at the top)."""
    write_project(tmp_path / "deploy", CONFIG, IMAGES)
    init_git(tmp_path)
    commit_files(tmp_path, {"deploy/images/tools/tool.sh": "echo\n"})
    code, output = run_main(["changed", "--since", "HEAD~1", "--json"], capsys, monkeypatch, tmp_path / "deploy")
    assert code == 0, output
    rows = json.loads(output)["images"]
    assert [(r["image"], r["reason"]) for r in rows] == [
        ("shop/tools", "deploy/images/tools/tool.sh changed"),
        ("shop/app", "depends on shop/tools"),
    ]


def test_a_since_that_looks_like_an_option_is_refused_not_given_to_git(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--since=--output=FILE` would make `git diff` write FILE: it is refused as a revision, exit 2."""
    written = project / "written-by-git"
    code, output = run_main(["changed", f"--since=--output={written}"], capsys, monkeypatch, project)
    assert code == 2, output
    assert f"--since --output={written}: a revision cannot start with '-'" in output
    assert not written.exists()


def test_json_in_ci_is_the_same_data_whatever_the_paths_say(project: Path) -> None:
    """In CI stdout is filtered so build output cannot run logging commands; a --json answer must still
    decode to the exact paths (a file may be named `notes##[x].txt` or start with `::`)."""
    odd = ["images/app/notes##[x].txt", "images/app/::warning::y.txt", "images/app/##vso[task.complete]z.txt"]
    commit_files(project, dict.fromkeys(odd, "new\n"))
    for ci in ({"GITHUB_ACTIONS": "true"}, {"TF_BUILD": "True"}):
        done = run_cli(["changed", "--since", "HEAD~1", "--json"], project, env=ci)
        assert done.code == 0, done.output
        (app,) = [image for image in json.loads(done.stdout)["images"] if image["image"] == "shop/app"]
        assert sorted(app["files"]) == sorted(odd)
