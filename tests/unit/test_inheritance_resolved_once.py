"""Inheritance is resolved in one place (pipeline/config: the merge table of config.resolved): no module
outside pipeline/config reads an inherited setting off a pipeline of the spec (`spec.pipelines[p].notify`,
`spec.pipelines[p].images[i]`) or falls back from one level to another by hand (`a.notify or spec.notify`);
they read the resolved images (the plan's PlannedImage, `Plan.notifications()`) instead.

Read with `ast` from the source, as test_architecture does; failures name the file, line and expression.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline.config.schema import ConfigSpec, ImageSpec, PipelineSpec

ROOT = Path(__file__).resolve().parents[2] / "pipeline"

# A setting written at more than one level (top and pipeline, or pipeline and image) is inherited; a
# pipeline's images are resolved with it.
_TOP, _PIPELINE, _IMAGE = set(ConfigSpec.model_fields), set(PipelineSpec.model_fields), set(ImageSpec.model_fields)
INHERITED = frozenset((_TOP & _PIPELINE) | (_PIPELINE & _IMAGE) | {"images"})


def _is_pipeline_lookup(node: ast.expr) -> bool:
    """`<anything>.pipelines[<key>]`."""
    return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "pipelines"


def inheritance_outside_config(path: Path, rel: str) -> list[str]:
    """Each place in `path` that reads an inherited setting off a pipeline or falls back by hand."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in INHERITED and _is_pipeline_lookup(node.value):
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)} (an inherited setting read off a pipeline)")
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            names = [v.attr for v in node.values if isinstance(v, ast.Attribute)]
            shared = {n for n in names if n in INHERITED and names.count(n) > 1}
            if shared:
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)} (falls back from one level to another)")
    return found


def problems(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if not rel.startswith(f"{root.name}/config/"):
            found += inheritance_outside_config(path, rel)
    return found


def test_no_module_outside_config_resolves_inheritance() -> None:
    assert problems(ROOT) == [], "\n".join(problems(ROOT))


def test_the_inherited_fields_are_those_of_more_than_one_level() -> None:
    assert {"notify", "acr", "sign", "registry", "tags", "secrets", "engine", "builder", "images"} <= INHERITED
    assert not {"on_base_update", "triggers", "context"} & INHERITED


def test_checker_names_file_line_and_expression(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "config").mkdir(parents=True)
    (package / "run.py").write_text(
        "def f(spec, p, i):\n"
        "    block = spec.pipelines[p].notify or spec.notify\n"
        "    image = spec.pipelines[p].images[i]\n"
        "    rules = spec.pipelines[p].on_base_update\n"  # a pipeline's own setting: fine
        "    return block, image, rules, spec.pipelines[p].triggers or spec.x\n"
    )
    owner = package / "config" / "resolve.py"  # pipeline/config resolves it: not reported
    owner.write_text("def g(spec, p):\n    return spec.pipelines[p].notify or spec.notify\n")
    assert problems(package) == [
        "pkg/run.py:2: spec.pipelines[p].notify or spec.notify (falls back from one level to another)",
        "pkg/run.py:2: spec.pipelines[p].notify (an inherited setting read off a pipeline)",
        "pkg/run.py:3: spec.pipelines[p].images (an inherited setting read off a pipeline)",
    ]
