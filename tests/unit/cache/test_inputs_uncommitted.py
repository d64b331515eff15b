"""The input digest hashes the working tree, never git's copy of it: a tracked file with uncommitted
edits (unstaged, or staged and then edited again) is hashed as it is on disk, the way a build sends it.
GitBlobs only spares reading tracked files whose working copy is unmodified."""

from __future__ import annotations

from pathlib import Path

from pipeline.cache.inputs import GitBlobs, context_listing
from tests.helpers import git, init_git
from tests.unit.cache.test_inputs import digest_of, project


def _listing(root: Path) -> dict[str, str]:
    return context_listing(root / "images/app", root / "images/app/Dockerfile", GitBlobs.read(root))


def _blob(root: Path, path: str) -> str:
    """git's id of the file's content on disk (`git hash-object`), as `git:<mode>:<id>` with mode 100644."""
    return f"git:100644:{git(root, 'hash-object', path)}"


def test_an_unstaged_edit_to_a_tracked_file_is_hashed_from_the_working_tree(tmp_path: Path) -> None:
    root = project(tmp_path)
    init_git(root)
    committed = digest_of(root)
    (root / "images/app/main.txt").write_text("edited, not staged\n")
    assert _listing(root)["main.txt"] == _blob(root, "images/app/main.txt")
    edited = digest_of(root)
    assert edited != committed
    # The same bytes committed give the same digest: the edit is what was hashed.
    git(root, "commit", "-qam", "edit")
    assert digest_of(root) == edited


def test_a_staged_file_edited_again_is_hashed_as_on_disk_not_as_staged(tmp_path: Path) -> None:
    root = project(tmp_path)
    init_git(root)
    (root / "images/app/main.txt").write_text("staged\n")
    git(root, "add", "images/app/main.txt")
    staged = _listing(root)["main.txt"]
    assert staged == _blob(root, "images/app/main.txt")  # index and disk agree: the index's id is right
    (root / "images/app/main.txt").write_text("edited after staging\n")
    listing = _listing(root)
    assert listing["main.txt"] == _blob(root, "images/app/main.txt")
    assert listing["main.txt"] != staged


def test_a_tracked_file_made_executable_is_hashed_with_its_new_mode(tmp_path: Path) -> None:
    root = project(tmp_path)
    init_git(root)
    (root / "images/app/main.txt").chmod(0o755)
    assert _listing(root)["main.txt"] == _blob(root, "images/app/main.txt").replace("100644", "100755")


def test_a_deleted_tracked_file_is_not_hashed(tmp_path: Path) -> None:
    root = project(tmp_path)
    init_git(root)
    (root / "images/app/main.txt").unlink()
    assert "main.txt" not in _listing(root)
