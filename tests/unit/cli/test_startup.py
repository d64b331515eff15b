"""`pipeline changed` runs in git hooks on every commit, so its start-up is part of each commit's time
(BENCHMARKS.md: under 300 ms on 10,000 files). Most of that is imports: these tests run the real command
in a fresh interpreter and fail when it loads a library it does not need again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
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


def probe(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """What the command printed on stdout, and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "\0" in done.stdout, done.stderr
    output, _, found = done.stdout.rpartition("\0")
    result = json.loads(found)
    assert result["code"] in (0, None), output + done.stderr
    return output, result["modules"]


def among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def loaded_modules(args: list[str], cwd: Path, names: tuple[str, ...]) -> list[str]:
    return among(probe(args, cwd)[1], names)


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


@pytest.mark.parametrize("disabled", ["__all__", "1", "true", None])
def test_changed_on_a_cache_miss_loads_no_plugin_scan(
    repository: Path, disabled: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic's plugin loader imports importlib.metadata (email, zipfile: ~15 ms) even to answer that
    plugins are off; pipeline answers it instead (config/no_pydantic_plugins.py), and the models are built
    and the config checked as before: the same affected images."""
    if disabled:
        monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", disabled)
    else:
        monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)  # unset: the CLI turns them off
    output, modules = probe(["changed", "--since", "HEAD~1"], repository)
    assert "pydantic" in modules and "pipeline.config.schema" in modules  # a miss: the models were built
    assert among(modules, ("importlib.metadata", "email", "zipfile")) == []
    assert among(modules, ("semver",)) == []  # a plan without a version parses none (pipeline.versioning)
    assert among(modules, ("pipeline.bases.lock",)) == []  # where the lock is: bases.lock_file
    assert among(modules, ("tempfile", "shutil")) == []  # the cache's fresh file: files.fresh_file
    assert [line.split()[0] for line in output.splitlines()] == ["shop/base", "shop/app"], output


def test_changed_with_some_pydantic_plugins_on_scans_for_them(repository: Path) -> None:
    """A PYDANTIC_DISABLE_PLUGINS that names plugins leaves the others on: pydantic's own loader looks."""
    _, modules = probe(["changed", "--since", "HEAD~1"], repository, {"PYDANTIC_DISABLE_PLUGINS": "logfire"})
    assert "pydantic" in modules and "importlib.metadata" in modules


# `pipeline --help`, a command's --help and a TAB (issue 29: each under 150 ms) need click and the
# command's own module: not the config models, the planner, the run stack or the clients it drives.
# pipeline.run.settings (stdlib only: --progress's choices) and pipeline.ci.environment stay.
NOT_LOADED_FOR_HELP = (
    *NOT_LOADED,
    "pydantic",
    "pipeline.config.loader",
    "pipeline.config.schema",
    "pipeline.plan",
    "pipeline.cache",
    "pipeline.registry",
    "pipeline.signing",
    "pipeline.cli.workflow",
    "pipeline.run.notifying",
)
# The CLI's own modules a --help or TAB loads besides the command's: the group and the completion callbacks.
CLI_CORE = ["pipeline.cli", "pipeline.cli.common", "pipeline.cli.completion"]


def complete(words: str) -> dict[str, str]:
    """The environment of a bash TAB after `words` (the word being completed is the last, maybe empty)."""
    return {
        "_PIPELINE_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }


def test_help_lists_every_command_and_loads_no_command_module(repository: Path) -> None:
    output, modules = probe(["--help"], repository)
    assert "  run         Build PIPELINES (default: all) in dependency order" in output
    assert "  completion  Print the completion script for SHELL;" in output
    assert "hook-run" not in output  # hidden
    assert among(modules, (*NOT_LOADED_FOR_HELP, "yaml", "pipeline.config")) == []
    assert among(modules, ("pipeline.cli",)) == CLI_CORE  # no command's module


def test_run_help_loads_only_its_command_module(repository: Path) -> None:
    output, modules = probe(["run", "--help"], repository)
    assert "Usage: pipeline run [OPTIONS] [PIPELINES]..." in output
    assert "--progress [auto|plain|quiet]" in output
    heavy = (*NOT_LOADED_FOR_HELP, "yaml", "pipeline.config")
    assert among(modules, heavy) == []
    assert among(modules, ("pipeline.cli",)) == sorted([*CLI_CORE, "pipeline.cli.build_commands"])


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("pipeline ru", ["plain,run"]),
        ("pipeline ", ["plain,acr", "plain,attest", "plain,bases"]),
        ("pipeline run --pro", ["plain,--progress"]),
        ("pipeline run --progress ", ["plain,auto", "plain,plain", "plain,quiet"]),
    ],
    ids=["command", "commands", "option", "choice"],
)
def test_completion_loads_no_config_or_run_stack(repository: Path, words: str, expected: list[str]) -> None:
    output, modules = probe([], repository, complete(words))
    assert output.splitlines()[: len(expected)] == expected
    assert among(modules, (*NOT_LOADED_FOR_HELP, "yaml", "pipeline.config")) == []
    command_module = ["pipeline.cli.build_commands"] if "run" in words else []
    assert among(modules, ("pipeline.cli",)) == sorted([*CLI_CORE, *command_module])


@pytest.mark.parametrize(
    ("words", "expected"),
    [("pipeline run ", ["plain,shop"]), ("pipeline explain sh", ["plain,shop/base", "plain,shop/app"])],
    ids=["pipelines", "images"],
)
def test_completing_names_reads_the_file_without_the_config_models(
    repository: Path, words: str, expected: list[str]
) -> None:
    """Pipeline and image names come from pipelines.yaml through PyYAML alone (config.names)."""
    output, modules = probe([], repository, complete(words))
    assert output.splitlines() == expected
    assert among(modules, NOT_LOADED_FOR_HELP) == []


def test_the_command_table_summaries_are_the_commands_short_help() -> None:
    """`pipeline --help` and completion show the table's summaries: they must say what each command's
    own help would (at every width click may use), and hide what it hides."""
    from pipeline.cli import cli

    ctx = click.Context(cli)
    for name in cli.lazy:
        stand_in, command = cli.summaries[name], cli.get_command(ctx, name)
        assert command is not None
        assert stand_in.hidden == command.hidden, name
        for limit in (45, *range(30, 100)):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


# Every command's --help (and so its TABs) the same way; `serve --help` still loads the web server's
# modules (its option defaults come from pipeline.triggers.server), GitPython and the config models.
# `changed` reads image references (pipeline.registry.reference, stdlib only) to name variants.
NOT_LOADED_FOR_ANY_HELP = tuple(name for name in NOT_LOADED_FOR_HELP if name != "pipeline.registry")
HELP_PATHS = [
    *[[name] for name in ("plan", "graph", "validate", "explain", "bases", "release", "promote", "tags")],
    *[[name] for name in ("keys", "sign", "verify", "attest", "tree", "schema", "changed", "trigger", "hooks")],
    *[[name] for name in ("hook-run", "watch", "acr", "completion")],
    ["keys", "generate"],
    ["hooks", "install"],
    ["acr", "sync-tasks"],
]


@pytest.mark.parametrize("args", HELP_PATHS, ids=[" ".join(path) for path in HELP_PATHS])
def test_every_command_help_loads_no_config_models_clients_or_signing(repository: Path, args: list[str]) -> None:
    output, modules = probe([*args, "--help"], repository)
    assert output.startswith(f"Usage: pipeline {' '.join(args)} ")
    assert among(modules, (*NOT_LOADED_FOR_ANY_HELP, "yaml", "pipeline.config")) == []


@pytest.mark.parametrize(
    "words", ["pipeline release ", "pipeline bases ", "pipeline changed ", "pipeline acr sync-tasks "]
)
def test_completing_pipeline_names_of_every_command_loads_no_config_models(repository: Path, words: str) -> None:
    output, modules = probe([], repository, complete(words))
    assert output.splitlines() == ["plain,shop"]
    assert among(modules, NOT_LOADED_FOR_ANY_HELP) == []


def test_the_clis_name_for_a_missing_ref_is_gits() -> None:
    """trigger --before's default is vcs.ZERO_SHA, taken from common.checkout (the CLI imports no vcs)."""
    from pipeline.cli.trigger_commands import ZERO_SHA
    from pipeline.vcs import ZERO_SHA as GITS

    assert ZERO_SHA == GITS
