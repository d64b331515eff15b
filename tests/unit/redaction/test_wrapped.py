"""A secret's base64 wrapped over lines, exactly as `base64` (coreutils; busybox wraps the same) prints it:
every line of it hidden, fed line by line as a build step's log comes or as one block, at any offset in
the encoded data and any wrap width; short words that are not part of it left alone."""

from __future__ import annotations

import base64
import random
import subprocess
from pathlib import Path

import pytest

from pipeline.redaction import Redactor

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:!"


def secret_of(length: int, seed: int = 24) -> str:
    chance = random.Random(seed)
    return "".join(chance.choice(ALPHABET) for _ in range(length))


def encoded(data: bytes, *flags: str, tool: str = "base64") -> list[str]:
    return subprocess.run([tool, *flags], input=data, capture_output=True, check=True).stdout.decode().splitlines()


# What may show of the first line: the characters that encode only the bytes before the secret (the
# 0, 1 or 2 before it in its 3-byte group), then the mask.
SHOWN_OF_PREFIX = {0: 0, 1: 2, 2: 3}


@pytest.mark.parametrize("length", [95, 200])
@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("flags", [(), ("-w", "64"), ("-w", "60"), ("-w", "100")], ids=["76", "64", "60", "100"])
@pytest.mark.parametrize("newline", [False, True], ids=["file", "file-with-newline"])
def test_every_line_of_a_wrapped_base64_secret_is_hidden_line_by_line_and_as_a_block(
    tmp_path: Path, length: int, offset: int, flags: tuple[str, ...], newline: bool
) -> None:
    secret = secret_of(length)
    file = tmp_path / "secret"
    file.write_text(secret + ("\n" if newline else ""))
    redactor = Redactor.for_run({}, (), [file])  # a build secret from a file, as a run reads it
    data = b"xy"[:offset] + file.read_bytes()
    lines = encoded(data, *flags)
    assert len(lines) > 1 and all(secret not in line for line in lines)
    first = lines[0][: SHOWN_OF_PREFIX[offset]] + "***"
    expected = [first] + ["***"] * (len(lines) - 1)

    assert redactor.text("\n".join(lines) + "\n") == "\n".join(expected) + "\n"
    # As the log tail of a report (a list of lines), as a log comes, and with a step's prefix on each line.
    assert redactor.data(lines) == expected
    stream = redactor.stream()
    assert [stream.text(line) for line in lines] == expected
    prefixed = redactor.stream()
    assert [prefixed.text(f"[linux/amd64] #7 0.2 {line}") for line in lines] == [
        f"[linux/amd64] #7 0.2 {line}" for line in expected
    ]


@pytest.mark.parametrize("tool", [("basenc", "--base64url"), ("base64", "-w", "76")], ids=["url-safe", "standard"])
def test_a_secret_after_other_data_in_one_encoding_is_hidden_in_every_line_it_reaches(tool: tuple[str, ...]) -> None:
    secret = secret_of(150, seed=7)
    redactor = Redactor([secret])
    data = f"user:{secret}:and some more data after it, not secret at all\n".encode()
    lines = encoded(data, *tool[1:], tool=tool[0])
    assert len(lines) == 4  # the secret ends in the third line; the fourth is other data only
    shown = [redactor.stream().text(line) for line in lines]  # each line alone: no help from the one before
    stream = redactor.stream()
    streamed = [stream.text(line) for line in lines]
    # The characters that encode the secret alone (it starts 2 bytes into a 3-byte group).
    secret_only = base64.b64encode(data).decode().translate(str.maketrans("+/", "-_") if "url" in tool[1] else {})
    secret_only = secret_only[8 : (5 + 150) // 3 * 4]
    for redacted in (shown, streamed):
        assert redacted[0] == lines[0][:7] + "***"  # `user:` and the secret's first 2 bits
        assert redacted[1] == "***"
        # The third line: the secret's last characters hidden, the data after it shown.
        assert redacted[2].startswith("***") and lines[2].endswith(redacted[2][3:]) and len(redacted[2]) > 20
        assert redacted[3] == lines[3]
        assert not any(secret_only[i : i + 6] in "\n".join(redacted) for i in range(len(secret_only) - 6))


def test_a_short_last_line_is_hidden_where_it_goes_on_and_short_words_elsewhere_are_not() -> None:
    secret = secret_of(59, seed=5)  # 80 characters of base64: a last line of 4 at 76 columns
    lines = encoded(secret.encode())
    assert len(lines) == 2 and len(lines[1]) == 4, lines
    tail = lines[1]
    redactor = Redactor([secret])
    stream = redactor.stream()
    log = ["step 3/4", lines[0], "another step's line", tail, tail, "==", "done", "ok"]
    assert [stream.text(line) for line in log] == [
        "step 3/4",
        "***",
        "another step's line",  # output of a step running beside it may come in between
        "***",
        tail,  # the encoding has ended: the same text again is not part of it (nor a secret on its own)
        "==",
        "done",
        "ok",
    ]
    # Alone (nothing before it that it continues) a last line this short stays, as would any short
    # word that happens to end an encoding.
    lone = redactor.stream()
    assert lone.text(tail) == tail
    assert [lone.text(line) for line in lines] == ["***", "***"]


def test_ordinary_logs_and_other_base64_are_left_alone() -> None:
    secrets = [secret_of(n, seed=n) for n in (12, 40, 95, 200)]
    redactor = Redactor(secrets)
    other = encoded(secret_of(300, seed=99).encode())  # someone else's data, wrapped the same way
    log = [
        "#5 [2/4] RUN apk add --no-cache ca-certificates",
        "sha256:" + "0123456789abcdef" * 4,
        "Successfully built 9f8e7d6c5b4a",
        *other,
        "==",
        "K",
        "done",
    ]
    stream = redactor.stream()
    assert [stream.text(line) for line in log] == log
    assert redactor.text("\n".join(log)) == "\n".join(log)
