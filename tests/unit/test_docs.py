"""The documentation site (docs/, mkdocs.yml): its generated pages are what scripts/gen_docs.py writes now
(every key of the JSON Schema, every command's --help), README stays a front page, and the site builds
with `mkdocs build --strict` where mkdocs is installed (`bash scripts/dev test` always builds it)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_generated_from_the_schema() -> None:
    module = gen_docs()
    committed = (ROOT / "docs/reference/configuration.md").read_text(encoding="utf-8")
    assert committed == module.configuration_page(json.loads((ROOT / "schema/pipelines.schema.json").read_text())), (
        "docs/reference/configuration.md is stale: python scripts/gen_docs.py"
    )


def test_every_schema_key_and_description_is_on_the_configuration_page() -> None:
    schema = json.loads((ROOT / "schema/pipelines.schema.json").read_text())
    page = " ".join((ROOT / "docs/reference/configuration.md").read_text(encoding="utf-8").split())
    objects = [schema, *schema["$defs"].values()]
    keys = [(key, prop) for node in objects for key, prop in node.get("properties", {}).items()]
    assert len(keys) > 50
    for key, prop in keys:
        assert f"| `{key}`" in page
        assert " ".join(prop["description"].split()).replace("|", "\\|") in page, key
    for name in schema["$defs"]:
        assert f"## {name} {{ #{name.lower()} }}" in page


def test_the_command_help_page_is_every_commands_help() -> None:
    """Generated in a fresh interpreter, as `pipeline COMMAND --help` runs: click keeps a command's help
    option once made, so a test that invoked a command on its own (no root context, no `-h`) would change
    what the same process renders."""
    committed = (ROOT / "docs/reference/commands.md").read_text(encoding="utf-8")
    script = "import runpy, sys; module = runpy.run_path(sys.argv[1]); sys.stdout.write(module['commands_page']())"
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "scripts" / "gen_docs.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert committed == fresh.stdout, "docs/reference/commands.md is stale: python scripts/gen_docs.py"
    for command in ("run", "release", "acr sync-tasks", "keys generate", "verify", "bases"):
        assert f"## `pipeline {command}`" in committed
        assert f"Usage: pipeline {command} [OPTIONS]" in committed


def test_the_check_mode_names_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = gen_docs()
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n", encoding="utf-8")
    monkeypatch.setattr(module, "CONFIGURATION", stale)
    monkeypatch.setattr(module, "COMMANDS", tmp_path / "commands.md")
    (tmp_path / "commands.md").write_text(module.commands_page(), encoding="utf-8")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    assert module.main(["--check"]) == 1
    assert stale.read_text() == "# old\n"
    assert module.main([]) == 0 and module.main(["--check"]) == 0
    assert stale.read_text().startswith("# Configuration keys\n")


def test_readme_is_a_front_page_linking_every_page_of_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    # The two commands for a fresh Debian machine, which .ci/run and scripts/dev name.
    assert "```sh\nbash scripts/dev example\n```" in readme and "```sh\nbash scripts/dev test\n```" in readme
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]

    def pages(items: list[object]) -> list[str]:
        found: list[str] = []
        for item in items:
            assert isinstance(item, dict)
            for value in item.values():
                found += pages(value) if isinstance(value, list) else [value]
        return found

    listed = pages(nav)
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk
    linked = set(re.findall(r"\]\(docs/([^)#]+\.md)", readme))
    assert linked == set(listed) - {"index.md"}


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site/reference/configuration/index.html").is_file()
