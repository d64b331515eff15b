"""Writing the files a CI service reads: appended to (GitHub's, which other steps write too) or replaced."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError


def append_text(path: Path, text: str, what: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write the {what}: {exc.strerror}") from None


def write_text(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"{path}: cannot write the {what}: {exc.strerror}") from None
