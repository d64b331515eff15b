"""`pipeline explain` against a real build in the registry names exactly the context files that changed
the input digest: it named an edited .dockerignored README.md and missed a new untracked src/extra.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import app_project, init_git, run_cli
from tests.integration.conftest import Services


@pytest.mark.parametrize("platforms", [(), ("linux/amd64", "linux/arm64")], ids=["image", "index"])
def test_explain_names_the_untracked_and_deleted_files_never_the_ignored_one(
    tmp_path: Path, services: Services, namespace: str, platforms: tuple[str, ...]
) -> None:
    """One image, and an image index of two variants (their files listed once, below the variants)."""
    app_project(tmp_path, f"{services.plain_registry}/{namespace}", "FROM scratch\nCOPY . /app\n", platforms=platforms)
    app = tmp_path / "images/app"
    (app / ".dockerignore").write_text("*.md\n")
    (app / "README.md").write_text("docs\n")
    (app / "main.txt").write_text("v1\n")
    (app / "old.txt").write_text("going\n")
    init_git(tmp_path)
    built = run_cli(["run", "--json"], tmp_path)
    assert built.code == 0, built.output

    (app / "README.md").write_text("edited docs, not sent to the build\n")
    (app / "src").mkdir()
    (app / "src/extra.py").write_text("print('new')\n")
    (app / "old.txt").unlink()
    explained = run_cli(["explain", "app", "--json"], tmp_path)
    assert explained.code == 0, explained.output
    data = json.loads(explained.stdout)
    assert data["changed_inputs"] == ["context"]
    if platforms:  # the files once, below the variants' lines (each with `changed: context`)
        variants = data["details"][-4:-2]
        assert [line.split(" (")[0] for line in variants] == ["variant linux-amd64", "variant linux-arm64"]
        assert all(line.endswith("; changed: context") for line in variants), variants
    else:
        assert data["details"][-3] == "changed: context"
    assert data["details"][-2:] == ["  images/app/old.txt (deleted)", "  images/app/src/extra.py (added)"]
    assert not any("README.md" in line for line in data["details"])
    assert data["changed_files"] == [
        {"path": "images/app/old.txt", "change": "deleted"},
        {"path": "images/app/src/extra.py", "change": "added"},
    ]

    text = run_cli(["explain", "app"], tmp_path)
    assert text.code == 0, text.output
    assert text.stdout.splitlines()[-2:] == ["    images/app/old.txt (deleted)", "    images/app/src/extra.py (added)"]
