"""The build context's file set comes from one matcher (dockerfile/ignore.py): `context_paths` walks a
context exactly as docker-py's `exclude_paths` does (the input digests used docker-py's until issue 27),
on a table of tricky .dockerignore cases over a real tree on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from pipeline.dockerfile.ignore import context_paths

FILES = [
    "Dockerfile",
    "build/Dockerfile.prod",
    ".dockerignore",
    "README.md",
    "notes.md",
    "docs/guide.md",
    "docs/keep/a.txt",
    "docs/keep/deep/b.txt",
    "src/main.go",
    "src/keep.txt",
    "src/vendor/lib.go",
    "src/vendor/.dockerignore",
    "a/b/c/d.txt",
    "a/b/e.txt",
    "Temp1",
    "temp22",
    ".git/HEAD",
    "..dots/x",
    "node_modules/pkg/index.js",
]

CASES = {
    "no patterns": [],
    "negation": ["*.md", "!README.md"],
    "negation inside an excluded directory": ["docs", "!docs/keep/a.txt"],
    "negation by a glob no directory starts with": ["docs", "!*/keep/a.txt"],
    "double star": ["**/*.txt", "!a/b/**"],
    "double star alone then exceptions": ["**", "!src/**", "!Dockerfile"],
    "double star directory": ["**/vendor", "src/**/*.go"],
    "trailing slash": ["docs/", "a/b/"],
    "leading slash": ["/src", "/a/b/c/"],
    "dot and dotdot": [".", "./notes.md", "x/../docs/keep", "../..dots", "./a/./b/../b/c"],
    "Dockerfile and .dockerignore excluded": ["Dockerfile", ".dockerignore", "build"],
    "everything excluded": ["*"],
    "everything but a directory": ["*", "!src"],
    "case and character classes": ["temp?", "[a-c]", "[!t]*.md", "TEMP2*"],
    "hidden and tricky names": [".git", "**/.dockerignore", "node_modules/**/*.js"],
    "exception then exclusion again": ["!docs/keep", "docs", "!docs/keep/deep", "docs/keep/deep/b.txt"],
    "blank-like patterns": ["", "/", "!", "  spaced.md  "],
}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "empty").mkdir()
    os.symlink("src", tmp_path / "linked-dir")
    os.symlink("README.md", tmp_path / "linked-file")
    return tmp_path


@pytest.mark.parametrize("patterns", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "build/Dockerfile.prod", "../Dockerfile"])
def test_context_paths_are_docker_pys_exclude_paths(context: Path, patterns: list[str], dockerfile: str) -> None:
    theirs = exclude_paths(str(context), list(patterns), dockerfile=dockerfile)
    ours = context_paths(context, patterns, dockerfile)
    assert ours == theirs
    assert ours  # every case sends something (.dockerignore at least)
