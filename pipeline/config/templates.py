"""`{{ name }}` placeholders in build args: which names a string uses, and rendering them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Set

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
STATIC_NAMES = frozenset({"version", "major", "minor", "patch", "git.sha", "git.short_sha", "git.branch", "git.pr"})
IMAGE_PREFIX = "images."


class TemplateSyntaxError(ValueError):
    pass


def placeholders(text: str) -> list[str]:
    """Names used in `text`, in order; raise TemplateSyntaxError on an unclosed or empty `{{`."""
    names = PLACEHOLDER_RE.findall(text)
    leftover = PLACEHOLDER_RE.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateSyntaxError(f"malformed placeholder in '{text}' (expected '{{{{ name }}}}')")
    return names


def image_references(text: str) -> list[str]:
    """Image names referenced as `{{ images.X }}`."""
    return [n[len(IMAGE_PREFIX) :] for n in placeholders(text) if n.startswith(IMAGE_PREFIX)]


def unknown_names(text: str, images: Set[str]) -> list[str]:
    """The names `text` uses that are neither static nor `images.<one of images>`. No set of the known
    names is built per call: a 200-image pipeline checks 200 build args against 200 names."""
    return [
        n
        for n in placeholders(text)
        if n not in STATIC_NAMES and not (n.startswith(IMAGE_PREFIX) and n[len(IMAGE_PREFIX) :] in images)
    ]


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder with its value; a name missing from `values` is a KeyError."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)
