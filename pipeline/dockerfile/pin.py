"""A Dockerfile with its external images pinned: each FROM, COPY --from and RUN --mount from= that names
one is rewritten to `repository@digest`, so a builder that cannot be given named contexts pulls exactly
the digest the run resolved, never a local copy of the tag nor what the tag points at later. Pure; line
numbers are kept (a step's error names the user's line)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.dockerfile.bases import UnresolvedBaseImage, written_bases


def pin_bases(
    dockerfile: str,
    pinned: Mapping[str, str],
    build_args: Mapping[str, str],
    *,
    platform: str | None = None,
    target: str | None = None,
    source: str = "Dockerfile",
) -> str:
    """`dockerfile` with each image `pinned` names (the reference as base_images resolves it, `:latest`
    written out -> `repository@digest`) written as that digest where it is read. An occurrence that cannot
    be found in the text is refused (UnresolvedBaseImage): never built on the tag unpinned."""
    lines = dockerfile.split("\n")
    for found in written_bases(dockerfile, build_args, platform=platform, target=target, source=source):
        reference = str(found.base.ref)
        if reference not in pinned:
            continue
        start = found.instruction.line - 1
        keyword = re.match(r"\s*\S+", lines[start])
        offset = keyword.end() if keyword is not None else 0
        # The word where it is read: after whitespace (FROM) or `=` (--from=, from=), before a separator.
        word = re.compile(r"(?<=[\s=\"'])" + re.escape(found.written) + r"(?=[\s,\"']|$)")
        for number in range(start, len(lines)):
            match = word.search(lines[number], offset if number == start else 0)
            if match is not None:
                text = lines[number]
                lines[number] = text[: match.start()] + pinned[reference] + text[match.end() :]
                break
            if not lines[number].rstrip().endswith(("\\", "`")):
                number = -1
                break
        else:
            number = -1
        if number < 0:
            raise UnresolvedBaseImage(
                f"{source}:{found.base.line}: cannot write {reference} as {pinned[reference]} in this "
                "instruction; refusing to build on the tag"
            )
    return "\n".join(lines)
