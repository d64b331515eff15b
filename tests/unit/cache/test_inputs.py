"""Input digests: what changes them and what doesn't."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.cache.inputs import GitBlobs, context_listing, input_digest
from pipeline.config.schema import ConfigSpec
from pipeline.plan import RunContext, make_plan
from tests.helpers import init_git, write_project


def project(root: Path) -> Path:
    write_project(
        root,
        "registry: r.example/x\npipelines:\n  p:\n    images:\n      app: {context: images/app}\n",
        {"app": "FROM scratch\nCOPY . /app\n"},
    )
    (root / "images/app/main.txt").write_text("hello\n")
    (root / "images/app/NOTES.md").write_text("notes\n")
    (root / "images/app/.dockerignore").write_text("*.md\n")
    return root


def digest_of(root: Path, build_args: dict[str, str] | None = None, deps: dict[str, str] | None = None) -> str:
    import yaml

    spec = ConfigSpec.model_validate(yaml.safe_load((root / "pipelines.yaml").read_text()))
    plan = make_plan(spec, root, [], RunContext())
    return input_digest(plan.images["p/app"], build_args or {}, deps or {}, GitBlobs.read(root)).digest


def test_ignored_files_do_not_count_and_real_changes_do(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = digest_of(root)
    (root / "images/app/NOTES.md").write_text("other notes\n")
    assert digest_of(root) == first
    (root / "images/app/main.txt").write_text("changed\n")
    assert digest_of(root) != first


def test_same_content_same_digest_tracked_or_not(tmp_path: Path) -> None:
    root = project(tmp_path)
    untracked = digest_of(root)
    init_git(root)
    tracked = digest_of(root)
    assert tracked == untracked  # git's blob ids are computed for untracked files too
    listing = context_listing(root / "images/app", root / "images/app/Dockerfile", GitBlobs.read(root))
    blob = subprocess.run(["git", "hash-object", "images/app/main.txt"], cwd=root, capture_output=True, text=True)
    assert listing["main.txt"] == f"git:100644:{blob.stdout.strip()}"
    assert "NOTES.md" not in listing


def test_build_args_dependencies_and_mode_change_the_digest(tmp_path: Path) -> None:
    root = project(tmp_path)
    base = digest_of(root)
    assert digest_of(root, build_args={"X": "1"}) != base
    assert digest_of(root, deps={"p/base": "sha256:" + "a" * 64}) != base
    (root / "images/app/main.txt").chmod(0o755)
    assert digest_of(root) != base
