from __future__ import annotations

from pipeline.config.resolve import dependencies_of
from pipeline.config.schema import PipelineSpec
from pipeline.graph import dependants_closure, find_cycle, topological_order


def test_template_reference_is_an_implicit_dependency() -> None:
    pipeline = PipelineSpec.model_validate(
        {
            "images": {
                "app": {"context": "a", "build_args": {"B": "{{ images.base }}", "V": "{{ version }}"}},
                "base": {"context": "b"},
                "tool": {"context": "t", "depends_on": ["base", "app"], "build_args": {"X": "{{images.base}}"}},
            }
        }
    )
    graph = dependencies_of(pipeline)
    assert graph == {"app": ("base",), "base": (), "tool": ("base", "app")}
    assert topological_order(graph) == ["base", "app", "tool"]


def test_cycle_is_spelled_out_in_build_order() -> None:
    assert find_cycle({"base": ("app",), "app": ("base",)}) == ["base", "app", "base"]
    assert find_cycle({"a": ("b",), "b": ("c",), "c": ("a",), "d": ()}) == ["a", "c", "b", "a"]
    assert find_cycle({"a": (), "b": ("a",)}) is None


def test_order_keeps_declaration_order_between_independent_images() -> None:
    assert topological_order({"z": (), "y": (), "x": ("z",)}) == ["z", "y", "x"]


def test_dependants_closure_is_transitive() -> None:
    graph = {"base": (), "mid": ("base",), "top": ("mid",), "other": ()}
    assert dependants_closure(graph, {"base"}) == {"base", "mid", "top"}
    assert dependants_closure(graph, {"other"}) == {"other"}
