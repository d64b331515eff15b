"""Writing the files a run hands on (the report, JUnit, dotenv, the schema, GitHub's outputs): appended to
(GitHub's, which other steps write too) or replaced whole. And the private files caches and stores keep
(`create_private`, `fresh_file`): made without tempfile, whose shutil, bz2 and lzma were ~3 ms of every
`pipeline changed`, which commit hooks run; this module imports nothing but os, pathlib and errors."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import PipelineError


def append_text(path: Path, text: str, what: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write the {what}: {exc.strerror}") from None


def write_text(path: Path, text: str, what: str) -> None:
    """Replace `path` whole (a temporary file renamed over it): whoever collects it — a CI server, the next
    job — never reads half of it. Missing parent directories are made (`--report reports/run.json` in a
    fresh checkout), as pytest does for --junitxml. `what` names it in the error."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.exists() and not path.is_file():  # /dev/stdout, a pipe: written to, never replaced
            with path.open("w", encoding="utf-8") as file:
                file.write(text)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise PipelineError(f"{path}: cannot write the {what}: a file is in the place of a directory") from None
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write the {what}: {exc.strerror}") from None


# Created, never opened if it exists (a leftover, or a link planted in its place), readable by its owner only.
_PRIVATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_private(path: Path | str) -> int:
    """A new file at `path`, open for writing (its descriptor): created exclusively (FileExistsError if
    anything is there, a symlink included, so nothing is written through a link), owner-only (0600)."""
    return os.open(path, _PRIVATE_FLAGS, 0o600)


def fresh_file(path: Path) -> tuple[int, str]:
    """A new private file beside `path` for its next content (renamed over it once written), as
    tempfile.mkstemp makes one: a random name, `create_private`. Its descriptor and name."""
    for _ in range(100):
        name = str(path.parent / f"{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return create_private(name), name
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no fresh temporary name")
