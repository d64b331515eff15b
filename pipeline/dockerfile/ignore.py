"""Which ignore file a build reads. BuildKit first looks for `<Dockerfile path>.dockerignore` beside
the Dockerfile (`app.Dockerfile.dockerignore`), then the context's `.dockerignore`; the classic
builder (and the docker CLI talking to it) reads only the context's."""

from __future__ import annotations

from pathlib import Path


def ignore_file(context: Path, dockerfile: Path, *, buildkit: bool) -> Path:
    if buildkit:
        own = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if own.is_file():
            return own
    return context / ".dockerignore"


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of an ignore file as the docker CLI reads them (none when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
