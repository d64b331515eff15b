"""Shell completion: `pipeline completion bash|zsh|fish` prints click's script, and pipeline and image names
complete from the pipelines file, asked the way a shell asks (_PIPELINE_COMPLETE, COMP_WORDS, COMP_CWORD)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.shell_completion import CompletionItem, get_completion_class

from pipeline.cli import cli
from pipeline.cli.completion import COMPLETE_VAR, complete_images, complete_pipelines

CONFIG = """\
registry: 127.0.0.1:5000/local
pipelines:
  shop:
    images:
      base: {context: .}
      app: {context: .}
  tools:
    images:
      app: {context: .}
      lint: {context: .}
"""
OTHER = """\
registry: 127.0.0.1:5000/local
pipelines:
  docs:
    images:
      site: {context: .}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipelines.yaml").write_text(CONFIG)
    (tmp_path / "other.yaml").write_text(OTHER)
    return tmp_path


def complete(cwd: Path, line: str) -> tuple[list[str], str]:
    """What `pipeline` answers bash for the command line `line` (the cursor at its end): the candidates and
    stderr."""
    words = line.split(" ")  # a trailing space leaves an empty word: completing a new argument
    env = {
        **os.environ,
        COMPLETE_VAR: "bash_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipeline"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line], done.stderr


def test_pipeline_names_complete_from_the_pipelines_file(project: Path) -> None:
    assert complete(project, "pipeline run ") == (["shop", "tools"], "")
    assert complete(project, "pipeline run sh") == (["shop"], "")


def test_the_file_given_with_f_earlier_on_the_line_is_read(project: Path) -> None:
    assert complete(project, "pipeline plan -f other.yaml ") == (["docs"], "")
    assert complete(project, "pipeline explain --file other.yaml ") == (["docs/site", "site"], "")


@pytest.mark.parametrize("content", [None, "pipelines: [unclosed\n"])
def test_a_missing_or_invalid_file_completes_nothing_and_prints_nothing(project: Path, content: str | None) -> None:
    (project / "pipelines.yaml").unlink()
    if content is not None:
        (project / "pipelines.yaml").write_text(content)

    assert complete(project, "pipeline run ") == ([], "")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("\x00binary", []),
        ("just a string\n", []),
        ("pipelines: [shop, tools]\n", []),
        ("pipelines:\n  shop: 3\n  tools:\n    images: [a]\n", ["shop", "tools"]),  # being written: names only
    ],
)
def test_a_file_of_another_shape_completes_what_it_declares(
    project: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: list[str]
) -> None:
    (project / "pipelines.yaml").write_text(content)
    monkeypatch.chdir(project)

    assert [item.value for item in bash_completions(["run"], "")] == expected
    assert [item.value for item in bash_completions(["explain"], "")] == []


def bash_completions(args: list[str], incomplete: str) -> list[CompletionItem]:
    """In-process, what `complete` asks for over a subprocess: the same click machinery, quicker."""
    complete_class = get_completion_class("bash")
    assert complete_class is not None
    return complete_class(cli, {}, "pipeline", COMPLETE_VAR).get_completions(args, incomplete)


def commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub, subcommand in commands(command, ctx):
                yield f"{name} {sub}", subcommand
        else:
            yield name, command


def test_every_argument_naming_pipelines_or_an_image_completes() -> None:
    # Found from the CLI itself: a new command taking PIPELINES gets completion or fails here.
    ctx = click.Context(cli)
    completed = {}
    for name, command in commands(cli, ctx):
        for param in command.params:
            if isinstance(param, click.Argument) and param.name in ("pipelines", "image_name"):
                completed[name] = param._custom_shell_complete
    assert completed == {
        "run": complete_pipelines,
        "plan": complete_pipelines,
        "graph": complete_pipelines,
        "release": complete_pipelines,
        "changed": complete_pipelines,
        "bases": complete_pipelines,
        "acr sync-tasks": complete_pipelines,
        "explain": complete_images,
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("graph ", ["shop", "tools"]),
        ("release --bump patch t", ["tools"]),
        ("changed --since HEAD~1 shop ", ["tools"]),  # a pipeline already named is not offered again
        ("acr sync-tasks ", ["shop", "tools"]),
        ("explain ", ["shop/base", "shop/app", "tools/app", "tools/lint", "base", "lint"]),  # app: in both
        ("explain tools/", ["tools/app", "tools/lint"]),
    ],
)
def test_each_command_completes_its_names(
    project: Path, monkeypatch: pytest.MonkeyPatch, line: str, expected: list[str]
) -> None:
    monkeypatch.chdir(project)
    *args, incomplete = line.split(" ")

    assert [item.value for item in bash_completions(args, incomplete)] == expected


def script(shell: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "completion", shell], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_bash_script_completes_pipeline_names_in_a_real_bash(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # `pipeline` on PATH as a user has it; here it runs this checkout through `python -m` (the script
    # calls the command by the name typed, with _PIPELINE_COMPLETE whatever argv[0] is).
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "pipeline").write_text(f'#!/bin/sh\nexec {sys.executable} -m pipeline "$@"\n')
    (bin_dir / "pipeline").chmod(0o755)
    test = textwrap.dedent(
        """\
        eval "$(pipeline completion bash)"
        complete -p pipeline
        ask() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _pipeline_completion pipeline;
                echo "${COMPREPLY[*]}"; }
        ask pipeline run ''
        ask pipeline run -f other.yaml ''
        ask pipeline explain tools/
        """
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", test], cwd=project, env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [
        "complete -o nosort -F _pipeline_completion pipeline",
        "shop tools",
        "docs",
        "tools/app tools/lint",
    ]


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_the_zsh_and_fish_scripts_are_clicks_for_the_pipeline_command(
    project: Path, tmp_path: Path, shell: str, check: list[str]
) -> None:
    printed = script(shell, project)

    complete_class = get_completion_class(shell)
    assert complete_class is not None
    assert printed == complete_class(cli, {}, "pipeline", "_PIPELINE_COMPLETE").source() + "\n"
    assert f"_PIPELINE_COMPLETE={shell}_complete" in printed.replace('"', "")
    if shell == "zsh":
        assert "compdef _pipeline_completion pipeline" in printed
    else:
        assert "complete --no-files --command pipeline" in printed
    if shutil.which(check[0]):  # not installed here: the content checks above are what is left
        (tmp_path / "script").write_text(printed)
        done = subprocess.run([*check, str(tmp_path / "script")], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_an_unknown_shell_is_a_usage_error(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "completion", "tcsh"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 2 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in done.stderr
