"""The bounded, regular-file-only reader every file a user or a config names goes through."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.files import MAX_FILE_BYTES, check_regular_file, read_regular_file


def test_a_regular_file_is_read_whole(tmp_path: Path) -> None:
    file = tmp_path / "cosign.pub"
    file.write_bytes(b"-----BEGIN PUBLIC KEY-----\n")
    assert read_regular_file(file, "public key") == b"-----BEGIN PUBLIC KEY-----\n"


def test_a_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    file.write_bytes(b"#" * 1000)
    assert len(read_regular_file(file, "pipelines file", limit=1000)) == 1000


def test_a_character_device_is_refused_in_one_line_naming_it() -> None:
    with pytest.raises(ConfigError) as refused:
        read_regular_file(Path("/dev/zero"), "pipelines file")
    assert str(refused.value) == (
        "/dev/zero: the pipelines file is a character device, not a regular file; refusing to read it"
    )
    assert refused.value.exit_code == 2


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "pipelines.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"pipelines\.yaml: the pipelines file is a character device"):
        read_regular_file(link, "pipelines file")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(read_regular_file(fifo, "signing key"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # release the blocked open, so the suite goes on, and fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(timeout=5)
        pytest.fail("reading a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError), outcome
    assert str(outcome[0]) == f"{fifo}: the signing key is a FIFO, not a regular file; refusing to read it"


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    file = tmp_path / "pipelines.yaml"
    with file.open("wb") as sparse:  # 4 MiB + 1 byte, no disk blocks
        sparse.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ConfigError) as refused:
        read_regular_file(file, "pipelines file")
    assert str(refused.value) == (
        f"{file}: the pipelines file is {MAX_FILE_BYTES + 1} bytes, over the 4 MiB limit; refusing to read it"
    )
    with pytest.raises(ConfigError, match="over the 4 MiB limit"):
        check_regular_file(file, "secret file")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the trust config is a directory, not a regular file"):
        read_regular_file(tmp_path, "trust config")


def test_a_missing_file_is_the_callers_to_word(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", "public key")


def test_a_name_with_a_line_break_stays_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "a\nb"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as refused:
        read_regular_file(fifo, "CA file")
    assert "\n" not in str(refused.value) and "a\\nb" in str(refused.value)
