"""The plan's DAG as Mermaid or Graphviz dot text, or drawn as SVG; an image with variants lists them under
its name. Pure."""

from __future__ import annotations

from pipeline.cli.variants import variant_names
from pipeline.pictures import layout, render_svg
from pipeline.plan import Plan, PlannedImage

DOT_BREAK = "\\n"


def _node_id(key: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in key)


def _label(image: PlannedImage, line_break: str) -> str:
    """`shop/app`, with its variants on a second line: `[linux-amd64, linux-arm64, ltsc2019]`."""
    names = variant_names(image)
    return image.key + (f"{line_break}{names}" if names else "")


def to_mermaid(plan: Plan) -> str:
    lines = ["graph TD"]
    for key, image in plan.images.items():
        # Mermaid reads [ ] inside a quoted label as text; <br/> is its line break.
        lines.append(f'  {_node_id(key)}["{_label(image, "<br/>")}"]')
    for key, image in plan.images.items():
        for dep in image.depends_on:
            lines.append(f"  {_node_id(dep)} --> {_node_id(key)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;"]
    for key, image in plan.images.items():
        # Graphviz reads the two characters \n in a label as a line break.
        lines.append(f'  "{key}";' if not image.variants else f'  "{key}" [label="{_label(image, DOT_BREAK)}"];')
    for key, image in plan.images.items():
        for dep in image.depends_on:
            lines.append(f'  "{dep}" -> "{key}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(plan: Plan) -> str:
    """Drawn by our own layout (pipeline.pictures), so no Graphviz is needed; the same drawing as serve's."""
    graph = {key: image.depends_on for key, image in plan.images.items()}
    labels = {key: _label(image, "\n").split("\n") for key, image in plan.images.items()}
    return render_svg(layout(graph, labels), title="pipeline graph") + "\n"
