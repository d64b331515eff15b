"""The run's parts stay apart: the scheduler walks the DAG and sees no builder or registry; one image's
build (image_build, engine_build, image_steps, build_parts, platform_set) never reaches back into the
scheduler; the engine slots are their own module both may use."""

from __future__ import annotations

import ast
from pathlib import Path

RUN = Path(__file__).resolve().parents[3] / "pipeline" / "run"
IMAGE_BUILD = ("image_build", "engine_build", "image_steps", "build_parts", "platform_set")


def imported(module: str) -> set[str]:
    tree = ast.parse((RUN / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_image_build_never_imports_the_scheduler() -> None:
    offenders = {m: sorted(i for i in imported(m) if i == "pipeline.run.scheduler") for m in IMAGE_BUILD}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_the_scheduler_sees_no_builder_registry_or_image_build() -> None:
    banned = ("pipeline.builders", "pipeline.registry", *(f"pipeline.run.{m}" for m in IMAGE_BUILD))
    assert sorted(i for i in imported("scheduler") if i.startswith(banned)) == []
