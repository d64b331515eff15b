""".dockerignore matching ported from docker-py (dockerfile/ignore.py, so `changed` need not import the
engine client) answers as docker-py's PatternMatcher does, which the input digests use: on the cases
Docker documents and on generated patterns and paths."""

from __future__ import annotations

import pytest
from docker.utils.build import PatternMatcher
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dockerfile.ignore import IgnoreMatcher

PATTERNS = [
    ["*.md"],
    ["*.md", "!README.md"],
    ["docs/**", "!docs/keep/**"],
    ["**/*.go"],
    ["**"],
    ["*", "!src"],
    ["/leading/slash/", "trailing/", "./dot", "a/../b"],
    ["temp?", "[a-c]*.txt", "[!x]y", "[^x]z", "[", "odd[name"],
    ["Src/*.TXT"],  # docker-py compares case-insensitively
    ["", ".", "/", "!"],
    ["src", "!src/keep.txt"],
    ["*/*/deep"],
    ["**/temp*", "!**/tempkeep"],
]
PATHS = [
    "README.md",
    "notes.md",
    "docs/a.txt",
    "docs/keep/b.txt",
    "main.go",
    "cmd/tool/main.go",
    "src/keep.txt",
    "src/other.txt",
    "leading/slash/x",
    "trailing/y",
    "dot",
    "b",
    "b/c",
    "temp1",
    "temp12",
    "a.txt",
    "d.txt",
    "ay",
    "xy",
    "az",
    "[",
    "odd[name",
    "src/file.txt",
    "x/y/deep",
    "x/deep",
    "q/temp3/w",
    "tempkeep",
    ".dockerignore",
    "sub/.dockerignore",
]


@pytest.mark.parametrize("patterns", PATTERNS, ids=[" ".join(p) or "empty" for p in PATTERNS])
def test_matches_as_docker_py_does(patterns: list[str]) -> None:
    ours, theirs = IgnoreMatcher(patterns), PatternMatcher(patterns)
    assert {p: ours.matches(p) for p in PATHS} == {p: theirs.matches(p) for p in PATHS}


names = st.sampled_from(["a", "b", "A", "x.md", "y.txt", ".dockerignore", "docs", "src", "..", "."])
globs = st.sampled_from(["*", "**", "?", "*.md", "[a-b]", "[!a]", "a*", "**/"])
segments = st.one_of(names, globs)
patterns = st.builds(
    lambda negate, lead, parts: ("!" if negate else "") + ("/" if lead else "") + "/".join(parts),
    st.booleans(),
    st.booleans(),
    st.lists(segments, min_size=1, max_size=4),
)
paths = st.lists(names.filter(lambda n: n not in ("..", ".")), min_size=1, max_size=4).map("/".join)


@settings(max_examples=300, deadline=None)
@given(pattern_list=st.lists(patterns, max_size=4), path_list=st.lists(paths, min_size=1, max_size=8))
def test_generated_patterns_match_as_docker_py_does(pattern_list: list[str], path_list: list[str]) -> None:
    ours, theirs = IgnoreMatcher(pattern_list), PatternMatcher(pattern_list)
    assert [ours.matches(p) for p in path_list] == [theirs.matches(p) for p in path_list]
