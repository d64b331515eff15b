"""Edges that issue 12 removed stay removed: lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline

ROOT = Path(pipeline.__file__).parent


def _module_file(module: str) -> Path:
    path = ROOT.parent / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(module: str) -> set[str]:
    """Every module `module` imports, at the top or inside a function; `from a import b` counts as a.b too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(_module_file(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _names_used(module: str) -> set[str]:
    tree = ast.parse(_module_file(module).read_text(encoding="utf-8"))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }


def test_requirement_models_need_neither_verification_nor_keyless() -> None:
    assert not {"pipeline.signing.verify", "pipeline.signing.keyless"} & _imports("pipeline.signing.policy")
    assert "pipeline.signing.verify" not in _imports("pipeline.signing.keyless")


def test_graph_and_config_do_not_reach_up() -> None:
    assert not {m for m in _imports("pipeline.graph") if m.startswith("pipeline.config")}
    for path in sorted((ROOT / "config").glob("*.py")):
        module = f"pipeline.config.{path.stem}"
        assert not {m for m in _imports(module) if m.startswith("pipeline.plan")}, module


def test_sign_commands_leave_registry_and_signing_calls_to_the_core() -> None:
    calls = {"resolve_digest", "sign_digest", "verify_digest", "write_bundle"}
    assert not calls & _names_used("pipeline.cli.sign_commands")
