"""One bounded, regular-file-only reader: stat before opening (a device is never opened), open without
blocking (a FIFO swapped in after the stat does not hang), fstat the opened file (what is read is what
was checked) and read at most the limit plus one byte (a file growing meanwhile is still refused)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.errors import ConfigError

# Far above any real pipelines file, key or CA bundle (a big config is ~100 KB), far below what hurts.
MAX_FILE_BYTES = 4 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def check_regular_file(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> os.stat_result:
    """The stat of `path` (symlinks followed) when it is a regular file of at most `limit` bytes; else a
    one-line ConfigError naming it as `what`. OSError (missing, no permission) is the caller's to word."""
    return _refuse_unless_regular(path, os.stat(path), what, limit)


def read_regular_file(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The content of `path` (symlinks followed) when it is a regular file of at most `limit` bytes; else a
    one-line ConfigError naming it as `what`. OSError (missing, no permission) is the caller's to word."""
    check_regular_file(path, what, limit)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        _refuse_unless_regular(path, os.fstat(fd), what, limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise ConfigError(f"{_shown(path)}: the {what} grew past {_size(limit)} while being read; refusing it")
    return b"".join(chunks)


def _refuse_unless_regular(path: Path, info: os.stat_result, what: str, limit: int) -> os.stat_result:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "a special file")
        raise ConfigError(f"{_shown(path)}: the {what} is {kind}, not a regular file; refusing to read it")
    if info.st_size > limit:
        raise ConfigError(
            f"{_shown(path)}: the {what} is {info.st_size} bytes, over the {_size(limit)} limit; refusing to read it"
        )
    return info


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


def _shown(path: Path) -> str:
    """The path as one printable line (a name from a config can hold line breaks)."""
    text = os.fspath(path)
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode()
