"""Commands are thin: no module of pipeline/cli/ calls the registry, the engine or git itself (the
architecture test keeps their imports out; this keeps the calls out, lazy ones and method calls too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[3] / "pipeline" / "cli"

# Registry, signing-storage, engine and git operations: each belongs to a core function the command calls.
CORE_CALLS = {
    "resolve_digest",
    "list_tags",
    "image_labels",
    "put_manifest",
    "get_manifest",
    "connect",
    "sign_digest",
    "verify_digest",
    "write_bundle",
    "apply_changes",
    "build",
    "push",
    "Repo",
    "GitSource",
    "read_git_info",
    "create_tag",
    "delete_tag",
    "push_tag",
}


def calls_in(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in CORE_CALLS:
                found.append((node.lineno, name))
    return found


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_command_modules_leave_io_to_the_core(path: Path) -> None:
    assert [f"{path.name}:{line}: {name}()" for line, name in calls_in(path)] == []


def test_the_check_sees_a_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f(registry, ref):\n    return registry.resolve_digest(ref)\n")
    assert calls_in(sample) == [(2, "resolve_digest")]
