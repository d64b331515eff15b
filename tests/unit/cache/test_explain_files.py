"""`explain` names exactly the context files that changed the input digest since the last build's
commit: never a file the ignore file excludes (it named an edited, .dockerignored README.md), always
an untracked file the build sends (it missed a new src/extra.py), and deleted files too."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from pipeline.cache.changes import FileChange, context_changes, sent_files
from pipeline.cache.inputs import GitBlobs, input_digest
from pipeline.config import load_config
from pipeline.plan import PlannedImage, RunContext, make_plan
from pipeline.vcs.history import first_parent_history
from tests.helpers import git, init_git, write_project

CONFIG = """\
registry: r.example/x
pipelines:
  p:
    images:
      app: {context: images/app}
      root: {context: ., dockerfile: images/root.Dockerfile}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_project(tmp_path, CONFIG, {"app": "FROM scratch\nCOPY . /app\n"})
    (tmp_path / "images/root.Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    app = tmp_path / "images/app"
    (app / ".dockerignore").write_text("*.md\n")
    (app / "README.md").write_text("docs\n")
    (app / "main.txt").write_text("v1\n")
    (app / "old.txt").write_text("going\n")
    (tmp_path / ".dockerignore").write_text(".git\nimages/app\n")
    init_git(tmp_path)
    return tmp_path


def _image(root: Path, key: str) -> PlannedImage:
    config = load_config(root / "pipelines.yaml")
    return make_plan(config.spec, config.base_dir, [], RunContext(), config.positions).images[key]


def _context(root: Path, key: str) -> str:
    """The image's context component as a build now would record it."""
    return input_digest(_image(root, key), {}, {}, GitBlobs.read(root)).components["context"]


def _changes(root: Path, key: str, recorded: set[str]) -> tuple[list[FileChange], bool]:
    history, _ = first_parent_history(root)
    assert history is not None
    found = context_changes(history, _image(root, key), git(root, "rev-parse", "HEAD"), GitBlobs.read(root), recorded)
    assert found is not None
    return found.files, found.exact


def _exactly(*changes: tuple[str, str]) -> tuple[list[FileChange], bool]:
    """The exact answer naming these files of images/app (path, how it changed), in this order."""
    return [FileChange(f"images/app/{path}", how) for path, how in changes], True


def test_ignored_edits_are_not_named_untracked_changed_and_deleted_files_are(root: Path) -> None:
    built = _context(root, "p/app")
    (root / "images/app/README.md").write_text("edited docs\n")  # .dockerignored
    (root / "images/app/src").mkdir()
    (root / "images/app/src/extra.py").write_text("print()\n")  # untracked
    (root / "images/app/main.txt").write_text("v2\n")
    (root / "images/app/old.txt").unlink()
    assert _context(root, "p/app") != built
    assert _changes(root, "p/app", {built}) == _exactly(
        ("main.txt", "modified"), ("old.txt", "deleted"), ("src/extra.py", "added")
    )


def test_only_an_ignored_edit_names_nothing(root: Path) -> None:
    built = _context(root, "p/app")
    (root / "images/app/README.md").write_text("edited docs\n")
    assert _context(root, "p/app") == built
    assert _changes(root, "p/app", {built}) == ([], True)


def test_an_ignore_file_edit_names_the_files_it_lets_in_or_out(root: Path) -> None:
    built = _context(root, "p/app")
    (root / "images/app/.dockerignore").write_text("old.txt\n")  # README.md back in, old.txt out
    assert _changes(root, "p/app", {built}) == _exactly(
        (".dockerignore", "modified"), ("README.md", "added"), ("old.txt", "deleted")
    )


def test_the_repository_root_as_context_with_a_directory_excluded(root: Path) -> None:
    built = _context(root, "p/root")
    (root / "images/app/main.txt").write_text("v2\n")  # excluded with its directory
    (root / "notes.txt").write_text("new\n")
    assert _changes(root, "p/root", {built}) == ([FileChange("notes.txt", "added")], True)


def test_a_last_build_of_uncommitted_files_is_said_to_be_compared_with_its_commit(root: Path) -> None:
    (root / "images/app/main.txt").write_text("built uncommitted\n")
    built = _context(root, "p/app")
    (root / "images/app/main.txt").write_text("v3\n")
    files, exact = _changes(root, "p/app", {built})
    assert (files, exact) == ([FileChange("images/app/main.txt", "modified")], False)


@pytest.mark.parametrize(
    "patterns",
    [
        [],
        ["*.md"],
        ["docs", "!docs/keep.md"],
        ["docs", "!*/keep.md"],  # docker-py skips docs/ (no exception starts with it): keep.md stays out
        ["**/*.txt", "!a/b/*.txt"],
        ["a/", "!a/b"],
        ["*", "!Dockerfile"],
        ["Dockerfile", ".dockerignore"],
    ],
)
def test_sent_files_is_exclude_paths_on_a_listing(tmp_path: Path, patterns: list[str]) -> None:
    files = ["Dockerfile", ".dockerignore", "top.md", "docs/keep.md", "docs/x.txt", "a/b/c.txt", "a/d.txt", "a/b/e/f"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    on_disk = {p for p in exclude_paths(str(tmp_path), list(patterns), "Dockerfile") if (tmp_path / p).is_file()}
    assert set(sent_files(dict.fromkeys(files, "id"), patterns, "Dockerfile")) == on_disk
