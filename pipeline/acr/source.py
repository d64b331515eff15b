"""The source a remote build receives: the context as tar.gz honouring .dockerignore, as `docker build`
sends it, with the OCI labels written into the Dockerfile (a DockerBuildRequest has no labels), and its
bases by the digests the run resolved (a DockerBuildRequest has no named contexts)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import docker.utils.build

from pipeline.dockerfile.bases import dockerfile_text
from pipeline.dockerfile.ignore import ignore_file, ignore_patterns, reads_own_ignore_file
from pipeline.errors import BuildError

# The generated Dockerfile's name inside the archive; docker.utils.build also lists it in the archive's
# .dockerignore, so `COPY . .` does not pick it up (as with `docker build -f` outside the context).
GENERATED_DOCKERFILE = ".pipeline.Dockerfile"
_ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_FROM = re.compile(r"^\s*FROM\s", re.IGNORECASE)
_STAGE_NAME = re.compile(r"\sAS\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SourceArchive:
    file: IO[bytes]  # positioned at 0
    size: int
    dockerfile: str  # its path inside the archive


def with_labels(dockerfile: str, labels: Mapping[str, str], target: str | None) -> str:
    """The Dockerfile with one LABEL instruction at the end of the stage that is built (the target, else
    the last one)."""
    if not labels:
        return dockerfile
    lines = dockerfile.splitlines()
    escape = "\\"
    for line in lines:
        if not line.startswith("#"):
            break
        found = _ESCAPE_DIRECTIVE.match(line)
        if found:
            escape = found.group(1)
    pairs = " ".join(f"{json.dumps(k)}={_quote(v, escape)}" for k, v in sorted(labels.items()))
    instruction = f"LABEL {pairs}"
    end = len(lines)
    if target:
        starts = [i for i, line in enumerate(lines) if _FROM.match(line)]
        named = [i for i in starts if (m := _STAGE_NAME.search(lines[i])) and m.group(1).lower() == target.lower()]
        if not named:
            raise BuildError(f"target stage '{target}' is not in the Dockerfile")
        later = [i for i in starts if i > named[0]]
        end = later[0] if later else len(lines)
    return "\n".join([*lines[:end], instruction, *lines[end:]]) + "\n"


def _quote(value: str, escape: str) -> str:
    escaped = value.replace(escape, escape + escape).replace('"', escape + '"').replace("\n", " ")
    return f'"{escaped}"'


def _dockerignore(context: Path, dockerfile: Path) -> list[str]:
    """The patterns ACR's build reads: the context's .dockerignore, found by the same lookup the input
    digest and `changed` use (dockerfile.ignore), so all three agree on what the build is sent."""
    return ignore_patterns(ignore_file(context, dockerfile, buildkit=reads_own_ignore_file("acr")))


def source_archive(
    context: Path, dockerfile: Path, labels: Mapping[str, str], target: str | None, pinned: str | None = None
) -> SourceArchive:
    """The context as tar.gz (a temporary file) with the labelled Dockerfile added: `pinned`, the
    Dockerfile with its bases by digest (pipeline.dockerfile.pin), when given, else the user's."""
    dockerfile_path = dockerfile if dockerfile.is_absolute() else context / dockerfile
    try:
        text = dockerfile_text(dockerfile_path) if pinned is None else pinned
    except OSError as exc:
        raise BuildError(f"cannot read {dockerfile_path}: {exc}") from None
    generated = with_labels(text, labels, target)
    archive = cast(
        IO[bytes],
        docker.utils.build.tar(
            context,
            exclude=_dockerignore(context, dockerfile_path),
            dockerfile=(GENERATED_DOCKERFILE, generated),
            gzip=True,
        ),
    )
    archive.seek(0, 2)
    size = archive.tell()
    archive.seek(0)
    return SourceArchive(archive, size, GENERATED_DOCKERFILE)
