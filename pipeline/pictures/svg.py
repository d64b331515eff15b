"""A Layout as SVG text: boxes (coloured by status, linked where a link is given) and arrows from each
dependency to its dependants. Pure.

Everything shown is escaped and stripped of characters XML cannot hold (a build's output may carry
terminal escapes), so the drawing parses as XML on its own and embeds safely in an HTML page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

from pipeline.pictures.layout import FONT_SIZE, LINE_HEIGHT, PAD_X, PAD_Y, Box, Layout

# status -> (fill, stroke): light fills keep the black label readable; the stroke carries the colour.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "succeeded": ("#dafbe1", "#1a7f37"),
    "reused": ("#d5f5f0", "#0f766e"),
    "failed": ("#ffebe9", "#cf222e"),
    "running": ("#ddf4ff", "#0969da"),
    "skipped": ("#eff2f5", "#818b98"),
    "interrupted": ("#fff8c5", "#9a6700"),
    "pending": ("#ffffff", "#818b98"),
}
PLAIN = ("#ffffff", "#1f2328")  # no status given: the graph as configured
DASHED = {"skipped", "pending"}  # not built: drawn dashed, so it reads without colour too
TEXT = "#1f2328"
EDGE = "#59636e"
FONT = "ui-monospace,SFMono-Regular,'DejaVu Sans Mono',Menlo,Consolas,monospace"
# XML 1.0 cannot hold these even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def text(value: object) -> str:
    """`value` as XML/HTML text or attribute content."""
    return escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def render_svg(
    drawing: Layout,
    statuses: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    title: str = "dependency graph",
    ident: str = "dag",
) -> str:
    """The drawing as one `<svg>` element. `statuses` colours boxes (STATUS_COLOURS), `links` wraps a box
    in a link; `ident` prefixes the ids inside (the arrow marker), unique per page when several are inlined."""
    statuses = statuses or {}
    links = links or {}
    marker = f"{_ident(ident)}-arrow"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{_n(drawing.width)}" '
        f'height="{_n(drawing.height)}" viewBox="0 0 {_n(drawing.width)} {_n(drawing.height)}" '
        f'role="img" aria-label="{text(title)}">',
        f"<title>{text(title)}</title>",
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto"><path d="M0,0L10,5L0,10z" fill="{EDGE}"/></marker></defs>',
    ]
    for edge in drawing.edges:
        parts.append(
            f'<path class="edge" data-from="{text(edge.source)}" data-to="{text(edge.target)}" '
            f'd="{_path(edge.points)}" fill="none" stroke="{EDGE}" stroke-width="1.3" marker-end="url(#{marker})"/>'
        )
    for box in drawing.boxes.values():
        parts.append(_box(box, statuses.get(box.key), links.get(box.key)))
    parts.append("</svg>")
    return "".join(parts)


def _box(box: Box, status: str | None, link: str | None) -> str:
    fill, stroke = STATUS_COLOURS.get(status or "", PLAIN)
    dash = ' stroke-dasharray="4 3"' if status in DASHED else ""
    tooltip = f"{box.key}: {status}" if status else box.key
    lines = "".join(
        f'<text x="{_n(box.x + PAD_X)}" y="{_n(box.y + PAD_Y + (i + 0.75) * LINE_HEIGHT)}">{text(line)}</text>'
        for i, line in enumerate(box.lines)
    )
    shape = (
        f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.width)}" height="{_n(box.height)}" rx="5" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dash}/>{lines}'
    )
    if link is not None:
        shape = f'<a href="{text(link)}">{shape}</a>'
    status_attr = f' data-status="{text(status)}"' if status else ""
    return (
        f'<g class="node" data-image="{text(box.key)}"{status_attr} font-family="{FONT}" '
        f'font-size="{FONT_SIZE}" fill="{TEXT}"><title>{text(tooltip)}</title>{shape}</g>'
    )


def _path(points: tuple[tuple[float, float], ...]) -> str:
    """Through every point, leaving and entering each horizontally (the arrow head lies flat)."""
    (x, y), rest = points[0], points[1:]
    d = [f"M{_n(x)},{_n(y)}"]
    for nx, ny in rest:
        if ny == y:
            d.append(f"L{_n(nx)},{_n(ny)}")
        else:
            mid = (x + nx) / 2
            d.append(f"C{_n(mid)},{_n(y)} {_n(mid)},{_n(ny)} {_n(nx)},{_n(ny)}")
        x, y = nx, ny
    return "".join(d)


def _n(value: float) -> str:
    """A coordinate with at most one decimal, the same text for the same number on every machine."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _ident(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value) or "dag"
