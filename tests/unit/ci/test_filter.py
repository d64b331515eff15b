"""The CI output filter: no line printed in CI reads as a logging command to GitHub's runner or Azure's
agent, except pipeline's own, and the JSON report decodes to the same data."""

from __future__ import annotations

import io
import json
import random
import re

import pytest

from pipeline.ci.commands import NEUTRAL, CommandFilter, defuse, inert_json, write_command

# How the runners read a line (see ci/commands.py COMMAND): Azure's agent and GitHub's runner's older syntax
# anywhere in it, GitHub's `::` after leading whitespace; lines end at any line break str.splitlines knows.
# Both compare culture-sensitively, so characters ICU ignores (U+200B, U+00AD, U+FEFF, controls) are skipped.
ICU_IGNORED = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u034f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)


def azure_parses(line: str) -> bool:
    return "##vso[" in line.lower() or line.lstrip().startswith("##[")


def github_parses(line: str) -> bool:
    return line.lstrip().startswith("::") or "##[" in line


# str.splitlines' line breaks but U+001C-U+001E: no runner ends a line there (.NET's ReadLine ends one at
# \r and \n only); the others stay, the stricter reading.
LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")


def commands(text: str, skip_ignored: bool = True) -> list[str]:
    lines = LINE_BREAK.split(text)
    if skip_ignored:
        lines = [ICU_IGNORED.sub("", line) for line in lines]  # the stricter reading: as ICU compares
    return [line for line in lines if azure_parses(line) or github_parses(line)]


ATTACKS = [
    "##vso[task.setvariable variable=EVIL]pwned",
    "#5 0.31 ##vso[task.setvariable variable=EVIL]pwned",
    "##VSO[task.setvariable variable=EVIL]pwned",
    "::set-output name=x::y",
    "    ::warning::x",
    "\t::add-mask::x",
    "##[group]fake",
    "  ##[error]fake",
    "progress 10%\r::warning::after a carriage return",
    "a\x0b::x",
    "a\u2028::x",
    "x ##[set-output name=x;]y",
    "#\u200b#vso[task.setvariable variable=EVIL]icu skips the zero-width space",
    "\u200b::warning::icu skips it at the start too",
    ":\u00ad:warning::soft hyphen",
    # Whitespace to Python (str.isspace), ignorable to ICU.
    "#\x1f#vso[task.setvariable variable=X]1",
    "#\x1e#vso[task.setvariable variable=X]1",
    "#\x1c#[group]fake",
    ":\x1f:set-output name=x::y",
    "\x1d::warning::at the start",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_filtered_line_is_no_command(attack: str) -> None:
    assert commands(attack), "the attack must be one before the filter"
    stream = io.StringIO()
    print(attack, file=CommandFilter(stream))  # type: ignore[arg-type]
    assert commands(stream.getvalue()) == []
    assert stream.getvalue().replace(NEUTRAL, "") == attack + "\n"  # only the neutral character added


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_command_split_over_writes_is_still_found(attack: str) -> None:
    """print() writes the text and its newline apart; a build's line may come in pieces."""
    for size in (1, 2, 3, 5):
        stream = io.StringIO()
        filtered = CommandFilter(stream)  # type: ignore[arg-type]
        for start in range(0, len(attack), size):
            filtered.write(attack[start : start + size])
        filtered.write("\n")
        assert commands(stream.getvalue()) == [], (size, stream.getvalue())


def test_text_without_commands_is_unchanged() -> None:
    text = "[  1.2s] shop/app  build   [2/3] RUN make # comment: a::b\n    | x ::y\n# heading\nurl http://a:b\n"
    stream = io.StringIO()
    CommandFilter(stream).write(text)  # type: ignore[arg-type]
    assert stream.getvalue() == text
    assert defuse("a: b")[0] == "a: b"


def test_pipelines_own_commands_pass_on_a_line_of_their_own() -> None:
    stream = io.StringIO()
    filtered = CommandFilter(stream)  # type: ignore[arg-type]
    filtered.write("half a line ")
    write_command("::group::shop/app done", filtered)  # type: ignore[arg-type]
    write_command("##vso[task.setvariable variable=PIPELINE_VERSION;isOutput=true]1.0.0", filtered)  # type: ignore[arg-type]
    filtered.write("::warning::from a build\n")
    assert stream.getvalue().splitlines() == [
        "half a line ",
        "::group::shop/app done",
        "##vso[task.setvariable variable=PIPELINE_VERSION;isOutput=true]1.0.0",
        f":{NEUTRAL}:warning::from a build",
    ]


def test_a_stream_that_cannot_encode_the_neutral_character_gets_a_space() -> None:
    raw = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    filtered = CommandFilter(raw)  # type: ignore[arg-type]
    filtered.write("##vso[task.complete result=Succeeded]x\n")
    filtered.flush()
    assert raw.buffer.getvalue() == b"##vso [task.complete result=Succeeded]x\n"  # type: ignore[attr-defined]


def test_click_writes_through_the_filter_and_binary_writes_are_refused() -> None:
    import click

    stream = io.StringIO()
    filtered = CommandFilter(stream)  # type: ignore[arg-type]
    click.echo("::warning::x", file=filtered)  # type: ignore[arg-type]
    assert stream.getvalue() == f":{NEUTRAL}:warning::x\n"
    with pytest.raises(TypeError):
        filtered.write(b"::x")  # type: ignore[arg-type]


def test_the_json_report_holds_no_command_and_decodes_to_the_same_data() -> None:
    data = {"log_tail": [*ATTACKS, "x" * 150 + "::warning::x"], "tags": ["a#b"]}
    text = inert_json(data)
    assert commands(text) == []
    assert json.loads(text) == data
    stream = io.StringIO()
    print(text, file=CommandFilter(stream))  # type: ignore[arg-type]
    assert stream.getvalue() == text + "\n"  # nothing for the filter to change: lossless


def test_random_text_in_random_pieces_never_holds_a_command() -> None:
    """The pieces the filter sees are the ones the stream gets: whatever the split, no command survives."""
    rng = random.Random(16)
    alphabet = [
        "#",
        "#",
        ":",
        ":",
        "[",
        "vso",
        "VSO",
        " ",
        "\t",
        "\n",
        "\r",
        "\u200b",
        "\u00ad",
        "\x1c",
        "\x1f",
        "x",
        "##vso[",
    ]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        stream = io.StringIO()
        filtered = CommandFilter(stream)  # type: ignore[arg-type]
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 4))))
        for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
            filtered.write(text[start:end])
        assert commands(stream.getvalue()) == [], repr(text)
        assert stream.getvalue().replace(NEUTRAL, "") == text
