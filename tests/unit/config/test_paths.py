"""config.paths.escape_problem compares real paths as text (pathlib's parsing was most of its cost):
a sibling whose name starts like the repository's is outside it, the filesystem root holds everything."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.paths import escape_problem


def test_a_sibling_directory_named_like_the_repository_is_outside_it(tmp_path: Path) -> None:
    (tmp_path / "repo" / "ctx").mkdir(parents=True)
    (tmp_path / "repo2" / "ctx").mkdir(parents=True)
    root = tmp_path.resolve() / "repo"
    assert escape_problem(root, root / "ctx", "ctx", "context") is None
    assert escape_problem(root, root, ".", "context") is None
    assert escape_problem(root, root / ".." / "repo2" / "ctx", "../repo2/ctx", "context") == (
        f"context '../repo2/ctx' is outside the repository {root}; keep build inputs inside it"
    )


def test_a_link_out_of_the_repository_is_named_with_where_it_leads(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo-other").mkdir()
    root = tmp_path.resolve() / "repo"
    (root / "link").symlink_to(tmp_path / "repo-other")
    assert escape_problem(root, root / "link", "link", "context") == (
        f"context 'link' leads through a symlink to {tmp_path.resolve() / 'repo-other'}, outside the repository {root}"
    )


def test_everything_is_inside_the_filesystem_root(tmp_path: Path) -> None:
    assert escape_problem(Path("/"), tmp_path, str(tmp_path), "context") is None
    assert escape_problem(Path("/"), Path("/"), "/", "context") is None
