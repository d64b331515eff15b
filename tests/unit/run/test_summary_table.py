"""The summary table drawn without rich's Table for plain cells: the same bytes rich draws (a terminal's
styles included), rich itself for what only rich knows how to draw (markup, wide text, cells to fold)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from pipeline.run import report
from pipeline.run.executor import ImageResult, RunResult, Status
from pipeline.run.report import STATUS_STYLE, print_summary


def result_of(*rows: tuple[str, Status, list[str]]) -> RunResult:
    images = {}
    for n, (key, status, tags) in enumerate(rows):
        digest = "sha256:" + f"{n:x}" * 64 if status == Status.SUCCEEDED else None
        images[key] = ImageResult(key, f"r/{key}", status, digest, tags=tags, duration=n * 1.37)
    return RunResult(images)


def rich_drawn(result: RunResult, **console: Any) -> str:
    """The table as rich's Table draws it (what print_summary printed before it drew plain tables itself)."""
    table = Table(title=None, show_lines=False)
    for column in ("image", "status", "digest", "tags", "time"):
        table.add_column(column, overflow="fold")
    for key, r in result.images.items():
        style = STATUS_STYLE[r.status]
        tags = ", ".join(r.tags) or "-"
        table.add_row(key, f"[{style}]{r.status.value}[/{style}]", (r.digest or "-")[:19], tags, f"{r.duration:.1f}s")
    stream = io.StringIO()
    Console(file=stream, width=160, **console).print(table)
    return stream.getvalue()


def printed(result: RunResult, **console: Any) -> str:
    """What print_summary prints on a console of these settings (a terminal's, or not)."""
    stream = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "Console", lambda **kw: Console(**kw, **console))
        print_summary(result, stream)
    return stream.getvalue()


CASES = {
    "no images": result_of(),
    "every status": result_of(
        *((f"shop/{s.value}", s, ["sha-1a2b3c4d5e6f", "1.2.3"] if s == Status.SUCCEEDED else []) for s in Status)
    ),
    # 16 characters of borders and padding, status 9, digest 19, time 4: 160 in all, then one more.
    "exactly the width": result_of(("shop/" + "a" * 51, Status.SUCCEEDED, ["t" * 56])),
    "one column too wide": result_of(("shop/" + "a" * 51, Status.SUCCEEDED, ["t" * 57])),
    "markup in a tag": result_of(("shop/app", Status.SUCCEEDED, ["[bold]x"])),
    "wide characters": result_of(("shop/アプリ", Status.FAILED, [])),
    "an emoji code": result_of(("shop/app", Status.SUCCEEDED, [":smile:"])),
}
TERMINALS = {
    "not a terminal": {},
    "a terminal, 16 colours": {"force_terminal": True, "color_system": "standard"},
    "a terminal, true colour": {"force_terminal": True, "color_system": "truecolor"},
}


@pytest.mark.parametrize("terminal", TERMINALS)
@pytest.mark.parametrize("case", CASES)
def test_the_summary_table_is_the_one_rich_draws(case: str, terminal: str) -> None:
    result = CASES[case]
    assert printed(result, **TERMINALS[terminal]).startswith(rich_drawn(result, **TERMINALS[terminal]))


def test_a_thousand_plain_rows_are_drawn_without_rich_s_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich measures and renders each cell (~0.4 ms a row): most of a 1,000-image no-op's summary."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rich's Table drew the summary")

    monkeypatch.setattr(report, "Table", refuse)
    result = result_of(*((f"big/img{i:03d}", Status.SUCCEEDED, ["sha-1a2b3c4d5e6f"]) for i in range(1000)))
    lines = printed(result).splitlines()
    assert len(lines) == 1000 + 4
    assert lines[3].startswith("│ big/img000 │ succeeded │ sha256:000000000000 │ sha-1a2b3c4d5e6f │ 0.0s ")


def test_a_table_of_the_full_width_is_drawn_directly_one_wider_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[bool] = []
    real = report._drawn_table

    def watched(*args: Any) -> Any:
        found = real(*args)
        drawn.append(found is not None)
        return found

    monkeypatch.setattr(report, "_drawn_table", watched)
    printed(CASES["exactly the width"])
    printed(CASES["one column too wide"])
    assert drawn == [True, False]
    assert max(len(line) for line in printed(CASES["exactly the width"]).splitlines()) == 160


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "latin-1"])
def test_an_output_without_box_characters_gets_rich_s_ascii_table(encoding: str) -> None:
    """rich draws `+---+` where the output's encoding has no box characters; the drawn table (UTF-8 only)
    would stop the end of a run with a UnicodeEncodeError after everything was pushed."""
    result = CASES["every status"]

    def through(stream_of: Any) -> str:
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding=encoding)
        stream_of(stream)
        stream.flush()
        return raw.getvalue().decode(encoding)

    def rich_prints(stream: io.TextIOWrapper) -> None:
        table = Table(title=None, show_lines=False)
        for column in ("image", "status", "digest", "tags", "time"):
            table.add_column(column, overflow="fold")
        for key, r in result.images.items():
            tags = ", ".join(r.tags) or "-"
            table.add_row(key, r.status.value, (r.digest or "-")[:19], tags, f"{r.duration:.1f}s")
        Console(file=stream, width=160).print(table)

    ours = through(lambda stream: print_summary(result, stream))
    assert ours.startswith(through(rich_prints))
    assert "+" in ours.splitlines()[0] or "-" in ours.splitlines()[0]
