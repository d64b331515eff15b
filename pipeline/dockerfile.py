"""The images a Dockerfile builds FROM, with ARG defaults and build args substituted. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

_ARG_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}?")


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _substitute(text: str, values: Mapping[str, str]) -> str:
    return _ARG_REF.sub(lambda m: values.get(m.group(1), ""), text)


def base_images(dockerfile: str, build_args: Mapping[str, str]) -> list[str]:
    """Image references in FROM lines (and COPY --from=image), excluding `scratch` and earlier stages."""
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    seen_from = False
    for line in _logical_lines(dockerfile):
        instruction, _, rest = line.partition(" ")
        keyword = instruction.upper()
        if keyword == "ARG" and not seen_from:
            name, _, default = rest.strip().partition("=")
            global_args[name.strip()] = build_args.get(name.strip(), default.strip().strip('"'))
        elif keyword == "FROM":
            seen_from = True
            words = [w for w in rest.split() if not w.startswith("--platform")]
            if not words:
                continue
            image = _substitute(words[0], {**global_args, **build_args})
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            if image.lower() != "scratch" and image.lower() not in stages and image:
                found.append(image)
        elif keyword == "COPY":
            match = re.search(r"--from=(\S+)", rest)
            if match:
                source = _substitute(match.group(1), {**global_args, **build_args})
                if source.lower() not in stages and not source.isdigit():
                    found.append(source)
    return list(dict.fromkeys(found))
