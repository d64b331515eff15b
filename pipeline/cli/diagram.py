"""The plan's DAG as Mermaid or Graphviz dot text. Pure."""

from __future__ import annotations

from pipeline.plan import Plan


def _node_id(key: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in key)


def to_mermaid(plan: Plan) -> str:
    lines = ["graph TD"]
    for key in plan.images:
        lines.append(f'  {_node_id(key)}["{key}"]')
    for key, image in plan.images.items():
        for dep in image.depends_on:
            lines.append(f"  {_node_id(dep)} --> {_node_id(key)}")
    return "\n".join(lines) + "\n"


def to_dot(plan: Plan) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;"]
    for key in plan.images:
        lines.append(f'  "{key}";')
    for key, image in plan.images.items():
        for dep in image.depends_on:
            lines.append(f'  "{dep}" -> "{key}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
