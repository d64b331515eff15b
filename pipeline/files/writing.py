"""Writing the files a run hands on (the report, JUnit, dotenv, the schema, GitHub's outputs): appended to
(GitHub's, which other steps write too) or replaced whole."""

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
