"""config/no_pydantic_plugins.py stands in for pydantic's private plugin loader and answers only
`get_plugins`: these tests read the installed pydantic's sources, so an upgrade whose modules ask that
loader for anything else fails here, by name, before a user's start-up fails with an ImportError."""

from __future__ import annotations

import ast
from pathlib import Path

import pydantic

from pipeline.config import no_pydantic_plugins

LOADER = no_pydantic_plugins.LOADER


def _package(path: Path, root: Path) -> list[str]:
    """The package a module of pydantic is in (pydantic/plugin/x.py and pydantic/plugin/__init__.py: both
    pydantic.plugin), which a relative import starts from."""
    return ["pydantic", *path.relative_to(root).with_suffix("").parts][:-1]


def loader_uses(root: Path) -> dict[str, set[str]]:
    """Each module of the package at `root` that names the loader, and what it takes from it ('*' for the
    module itself: an `import` of it, or a `from` its package that imports it as a name)."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            names: set[str] = set()
            if isinstance(node, ast.Import):
                names = {"*" for alias in node.names if alias.name == LOADER}
            elif isinstance(node, ast.ImportFrom):
                package = _package(path, root)
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                if module == LOADER:
                    names = {alias.name for alias in node.names}
                elif any(f"{module}.{alias.name}" == LOADER for alias in node.names):
                    names = {"*"}
            if names:
                found.setdefault(where, set()).update(names)
    return found


def test_pydantic_takes_only_get_plugins_from_its_loader() -> None:
    root = Path(pydantic.__file__).parent
    uses = loader_uses(root)
    assert uses, f"pydantic {pydantic.VERSION} no longer imports {LOADER}: is the stand-in still needed?"
    assert {name for names in uses.values() for name in names} == {"get_plugins"}, (
        f"pydantic {pydantic.VERSION} imports from {LOADER}: {uses}; no_pydantic_plugins.py answers get_plugins only"
    )
    assert no_pydantic_plugins.get_plugins() == ()


def test_the_reader_sees_each_way_of_importing_the_loader(tmp_path: Path) -> None:
    """The reader finds absolute, relative and whole-module imports (else the test above could pass blind)."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "__init__.py").write_text("from ._loader import get_plugins\n")
    (plugin / "a.py").write_text("from ._loader import get_plugins, PluginThing\n")
    (plugin / "b.py").write_text("from . import _loader\n")
    (tmp_path / "c.py").write_text("import pydantic.plugin._loader\nfrom .plugin._loader import other\n")
    (tmp_path / "d.py").write_text("from pydantic.plugin._loader import get_plugins\nfrom .plugin import x\n")
    assert loader_uses(tmp_path) == {
        "plugin/__init__.py": {"get_plugins"},
        "plugin/a.py": {"get_plugins", "PluginThing"},
        "plugin/b.py": {"*"},
        "c.py": {"*", "other"},
        "d.py": {"get_plugins"},
    }
