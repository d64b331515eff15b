"""`pipeline tags` prints label values pushed by anyone: a terminal escape in one is shown, not obeyed."""

from __future__ import annotations

from pipeline.cli.release_commands import _built_from
from pipeline.release.tagview import BuiltFrom, VersionRow


def test_built_from_escapes_what_the_labels_say() -> None:
    row = VersionRow(("1.1.0",), "sha256:aa", (), (), BuiltFrom("1.0.0\x1b[2J", "8204a1ede5c7\x07"), ("1.1.0",))
    assert _built_from(row, "") == "  built as 1.0.0\\x1b[2J at 8204a1ede5c7"
    plain = VersionRow(("1.1.0",), "sha256:aa", (), (), BuiltFrom("1.0.0", "8204a1ede5c7ff"), ("1.1.0",))
    assert _built_from(plain, "") == "  built as 1.0.0 at 8204a1ede5c7"
