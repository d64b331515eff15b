"""A Dockerfile rewritten to stand on resolved digests: each external base in FROM, `COPY --from=<image>`
and `RUN --mount=...,from=<image>` (read as base_images reads them: global ARGs, build args, platform
ARGs) named `repository@digest` instead, for builders that take no named contexts (the classic builder,
ACR Tasks). Edited in place: every instruction stays on its line (continuation lines and heredoc bodies
too), so a builder's error names the user's line. Stages, `scratch`, the run's own images and references
by a digest the mapping does not name (content-addressed already) are left as written; any other base the
mapping does not pin is refused, never built unpinned. Pure.

>>> pinned = "r.example/alpine@sha256:" + "1f" * 32
>>> text = pin_bases("FROM alpine AS a\\nRUN true\\n", {"docker.io/library/alpine:latest": pinned}, {})
>>> text == f"FROM {pinned} AS a\\nRUN true\\n"
True
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Mapping

from pipeline.dockerfile.bases import (
    BaseImage,
    UnresolvedBaseImage,
    base_images,
    bases_by_instruction,
    normal_reference,
)
from pipeline.dockerfile.parse import Instruction, flag_spans

_BOM = "\ufeff"
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_WORD = re.compile(r"[^\t\v\f\r ]+")

Edit = tuple[int, int, int, str]  # 0-based line, start column, end column, replacement


class UnpinnedBaseImage(UnresolvedBaseImage):
    """A base the build would pull has no resolved digest to stand on."""


def pin_bases(
    dockerfile: str,
    bases: Mapping[str, str],
    build_args: Mapping[str, str],
    *,
    platform: str | None = None,
    target: str | None = None,
    source: str = "Dockerfile",
    own: Collection[str] = (),
) -> str:
    """`dockerfile` with each external base `bases` maps (reference as base_images names it ->
    `repository@digest`) written as its pinned reference. `own`: repositories left as written (the run's
    own images, by tag; by digest they are left as written anyway). Raises UnpinnedBaseImage (naming
    `source`:line) for a base by tag the mapping lacks, or one that cannot be edited in place (split over
    lines)."""
    bom = _BOM if dockerfile.startswith(_BOM) else ""
    lines = dockerfile.removeprefix(_BOM).split("\n")
    edits: list[Edit] = []
    escape, instructions = bases_by_instruction(dockerfile, build_args, platform=platform, target=target, source=source)
    for instruction, found in instructions:
        wanted = {}
        for base in found:
            pinned = bases.get(str(base.ref))
            if pinned is not None:
                wanted[str(base.ref)] = pinned
            elif base.ref.digest is None and str(base.ref.repository) not in own:
                raise _unpinned(source, base, "has no resolved digest to build on")
        if wanted:
            edits += _edits(instruction, lines, wanted, escape, source)
    for line, start, end, text in sorted(edits, reverse=True):
        lines[line] = lines[line][:start] + text + lines[line][end:]
    pinned_text = bom + "\n".join(lines)
    _check(pinned_text, build_args, platform, target, source, own)
    return pinned_text


def _unpinned(source: str, base: BaseImage, why: str) -> UnpinnedBaseImage:
    return UnpinnedBaseImage(f"{source}:{base.line}: base image {base.ref} {why}; refusing to build unpinned")


def _edits(
    instruction: Instruction, lines: list[str], wanted: Mapping[str, str], escape: str, source: str
) -> list[Edit]:
    logical = "".join(lines[line][start:end] for line, start, end in instruction.segments)
    stripped = logical.strip()
    keyword = _WORD.match(stripped)
    if keyword is None:
        return []
    after = len(logical) - len(logical.lstrip()) + keyword.end()
    gap = _WHITESPACE.match(logical, after)
    rest = after + (gap.end() - gap.start() if gap else 0)
    arguments = logical[rest : len(logical.rstrip())]
    args_start, flags, spans = flag_spans(arguments, escape)
    replaced: list[tuple[int, int, str, str]] = []  # logical start, end, text, the reference it pins
    if instruction.keyword == "from":
        image = _WORD.search(arguments, args_start)
        if image is not None:
            reference, pinned = next(iter(wanted.items()))
            replaced.append((rest + image.start(), rest + image.end(), pinned, reference))
    for flag, (start, end) in zip(flags, spans, strict=True):
        name, _, value = flag.partition("=")
        text = written = None
        if instruction.keyword == "copy" and name == "--from":
            written = normal_reference(value)
            text = f"--from={wanted[written]}" if written is not None and written in wanted else None
        elif instruction.keyword == "run" and name == "--mount":
            text, written = _mount(value, wanted)
        if text is not None and written is not None:
            replaced.append((rest + start, rest + end, text, written))
    return [_physical(instruction, span, source) for span in replaced]


def _mount(spec: str, wanted: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`--mount=<spec>` with its from= image pinned, and that image; (None, None) when it names none to pin."""
    fields = next(csv.reader([spec]), [])
    changed = None
    for i, field in enumerate(fields):
        key, has_value, value = field.partition("=")
        reference = normal_reference(value) if key.lower() == "from" and has_value else None
        if reference is not None and reference in wanted:
            fields[i] = f"{key}={wanted[reference]}"
            changed = reference
    if changed is None:
        return None, None
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return "--mount=" + out.getvalue(), changed


def _physical(instruction: Instruction, span: tuple[int, int, str, str], source: str) -> Edit:
    """A replacement of logical columns [start, end) as an edit of the one physical line they lie on."""
    start, end, text, reference = span
    offset = 0
    for line, begin, finish in instruction.segments:
        length = finish - begin
        if offset <= start and end <= offset + length:
            return line, begin + start - offset, begin + end - offset, text
        if start < offset + length:
            break
        offset += length
    raise UnpinnedBaseImage(
        f"{source}:{instruction.line}: cannot write {reference} by its resolved digest in this instruction "
        "(it is split over lines; write it on one line); refusing to build unpinned"
    )


def _check(
    text: str,
    build_args: Mapping[str, str],
    platform: str | None,
    target: str | None,
    source: str,
    own: Collection[str],
) -> None:
    """Fail closed: as every builder reads the rewritten file (with heredocs and without), each external
    image it would pull is named by digest (or is one of the run's own)."""
    for base in base_images(text, build_args, platform=platform, target=target, source=source):
        if base.ref.digest is None and str(base.ref.repository) not in own:
            raise _unpinned(source, base, "is still unpinned after rewriting (a builder reads the file otherwise)")
