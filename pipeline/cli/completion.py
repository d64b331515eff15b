"""Shell completion: `pipeline completion bash|zsh|fish` prints the script (click's own), and the names
of pipelines and images complete from the pipelines file (-f FILE given earlier, else ./pipelines.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import cli

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

PROG_NAME = "pipeline"
# Fixed, not derived from argv[0]: `python -m pipeline` would otherwise read `_PYTHON -M PIPELINE_COMPLETE`.
COMPLETE_VAR = "_PIPELINE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; pipeline and image names complete from the pipelines file.

    \b
    Example:
      eval "$(pipeline completion bash)"                              # in ~/.bashrc
      pipeline completion zsh > "${fpath[1]}/_pipeline"                # zsh
      pipeline completion fish > ~/.config/fish/completions/pipeline.fish
    """
    from click.shell_completion import get_completion_class  # every command imports this module: load late

    complete_class = get_completion_class(shell)
    assert complete_class is not None  # SHELLS are click's own
    click.echo(complete_class(cli, {}, PROG_NAME, COMPLETE_VAR).source())


def _declared(ctx: click.Context) -> dict[str, list[str]]:
    """The names in the file the command line names so far; nothing when it can't be read: a TAB must
    never print a traceback or an error over the user's prompt."""
    config_file = ctx.params.get("config_file") or Path("pipelines.yaml")
    try:
        from pipeline.config.names import declared_images  # the YAML reader: only when completing

        return declared_images(Path(config_file))
    except Exception:  # noqa: BLE001 - any failure completes nothing, whatever the file holds
        return {}


def complete_pipelines(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The declared pipelines not named yet."""
    from click.shell_completion import CompletionItem

    given = set(ctx.params.get(param.name or "") or ())
    return [
        CompletionItem(name, help=f"{len(images)} image{'s' if len(images) != 1 else ''}")
        for name, images in _declared(ctx).items()
        if name.startswith(incomplete) and name not in given
    ]


def complete_images(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """pipeline/name for every image, and the bare name of an image no other pipeline also has."""
    from click.shell_completion import CompletionItem

    declared = _declared(ctx)
    keys = [(f"{pipeline}/{image}", pipeline) for pipeline, images in declared.items() for image in images]
    names = [key.split("/", 1)[1] for key, _ in keys]
    unique = [(name, pipeline) for (key, pipeline), name in zip(keys, names, strict=True) if names.count(name) == 1]
    return [
        CompletionItem(value, help=f"in {pipeline}")
        for value, pipeline in [*keys, *unique]
        if value.startswith(incomplete)
    ]
