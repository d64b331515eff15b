"""`{{ name }}` placeholders in build args: which names a string uses, and rendering them."""

from __future__ import annotations

import re
from collections.abc import Mapping

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


def unknown_names(text: str, images: set[str]) -> list[str]:
    known = STATIC_NAMES | {IMAGE_PREFIX + i for i in images}
    return [n for n in placeholders(text) if n not in known]


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder with its value; a name missing from `values` is a KeyError."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)
