"""`pipeline changed` runs in git hooks on every commit, so its start-up is part of each commit's time
(BENCHMARKS.md: under 300 ms on 10,000 files). Most of that is imports: these tests run the real command
in a fresh interpreter and fail when it loads a library it does not need again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import git, init_git, write_project

# What a run needs and `changed` never does: the engine client, GitPython, HTTP clients, the terminal
# renderer, signing; and the run stack of pipeline that imports them.
NOT_LOADED = (
    "docker",
    "git",  # GitPython: changed reads git through plain `git` calls
    "httpx",
    "requests",
    "urllib3",
    "rich",
    "pygments",
    "sigstore",
    "cryptography",
    "nacl",
    "azure",
    "tenacity",
    "pipeline.run.session",
    "pipeline.run.executor",
    "pipeline.run.scheduler",
    "pipeline.run.image_build",
    "pipeline.run.publishing",
    "pipeline.run.report",
    "pipeline.registry.client",
    "pipeline.vcs.source",
    "pipeline.vcs.loader",
    "pipeline.dockerfile.bases",  # the Dockerfile parser: changed reads only .dockerignore
)

# Runs the CLI as the console script does, then lists what got imported.
PROBE = """
import json, sys
sys.argv = ["pipeline", *json.loads(sys.argv[1])]
from pipeline.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\0" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_modules(args: list[str], cwd: Path, names: tuple[str, ...]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert "\0" in done.stdout, done.stderr
    output, _, probe = done.stdout.rpartition("\0")
    result = json.loads(probe)
    assert result["code"] in (0, None), output + done.stderr
    return [m for m in result["modules"] if any(m == n or m.startswith(n + ".") for n in names)]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_project(
        tmp_path,
        """\
        registry: 127.0.0.1:5000/startup
        pipelines:
          shop:
            images:
              base: {context: images/base}
              app: {context: images/app, build_args: {BASE: "{{ images.base }}"}}
        """,
        {"base": "FROM scratch\n", "app": "ARG BASE\nFROM ${BASE}\n"},
    )
    (tmp_path / "images/app/.dockerignore").write_text("*.md\n")
    init_git(tmp_path)
    (tmp_path / "images/base/new.txt").write_text("new\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base: new file")
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [["changed", "--since", "HEAD~1"], ["changed", "--since", "HEAD~1", "--json"], ["changed", "--help"], ["changed"]],
    ids=["text", "json", "help", "default-since"],
)
def test_changed_loads_no_engine_git_http_or_signing_library(repository: Path, args: list[str]) -> None:
    assert loaded_modules(args, repository, NOT_LOADED) == []


def test_changed_help_loads_no_config_models(repository: Path) -> None:
    """`changed` starts git before it loads the config (pydantic and the models), so they overlap: nothing
    before the command runs may import them."""
    assert loaded_modules(["changed", "--help"], repository, ("pydantic", "yaml", "pipeline.config")) == []


@pytest.mark.parametrize(
    "args", [["changed", "--since", "HEAD~1"], ["changed", "--since", "HEAD~1", "--json"], ["changed"]]
)
def test_changed_on_a_cache_hit_loads_no_config_models(repository: Path, args: list[str]) -> None:
    """The first run loads the config (and fills .git/pipeline/changed-cache.json); the next, with the
    pipelines file unchanged, answers from the cache: no pydantic, no PyYAML, no config package."""
    heavy = ("pydantic", "yaml", "pipeline.config", "pipeline.plan")
    assert "pydantic" in loaded_modules(args, repository, heavy)  # the miss
    assert loaded_modules(args, repository, heavy) == []
