"""`changed` makes resolved paths relative to the repository on their text (Path.relative_to was a fifth
of its work at 200 images): the answers must be Path.relative_to's, errors included."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from pipeline.triggers.changed import _relative


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/r/a/b", "/r"),
        ("/r", "/r"),
        ("/a/b", "/"),
        ("/", "/"),
        ("/rx/a", "/r"),
        ("/r", "/r/a"),
        ("/x", "/r"),
        ("/", "/r"),
    ],
)
def test_relative_is_path_relative_to(path: str, root: str) -> None:
    try:
        text = PurePosixPath(path).relative_to(root).as_posix()
        expected: object = "" if text == "." else text  # the root itself
    except ValueError:
        expected = ValueError
    try:
        got: object = _relative(Path(path), Path(root))
    except ValueError:
        got = ValueError
    assert got == expected
