"""Pictures of a dependency graph, drawn without any tool or system package: a layered layout of the
DAG (`layout`) and its SVG (`svg`), with optional per-image status colours and links. Pure: no I/O.

`pipeline graph --format svg` prints one; `pipeline serve`'s status page inlines one per run, so the
same drawing works in a terminal-less CI artefact and in a browser on a machine with no internet.

    >>> from pipeline.pictures import layout, render_svg
    >>> svg = render_svg(layout({"shop/base": (), "shop/app": ("shop/base",)}), statuses={"shop/app": "failed"})
"""

from pipeline.pictures.layout import Box, Edge, Layout, layout
from pipeline.pictures.svg import STATUS_COLOURS, render_svg

__all__ = ["STATUS_COLOURS", "Box", "Edge", "Layout", "layout", "render_svg"]
