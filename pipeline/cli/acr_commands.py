"""`pipeline acr ...`: ACR tasks that rebuild images on commits and base image updates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import config_option, echo_json, session, settings
from pipeline.cli.completion import complete_pipelines

# --help and completion import this module: the Azure sync and the config models load in the command.
if TYPE_CHECKING:
    from pipeline.acr import sync
    from pipeline.acr.tasks import TaskSpec


@click.group()
def acr() -> None:
    """Azure Container Registry: tasks that build on commits without a running `pipeline`."""


@acr.command("sync-tasks")
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option("--branch", metavar="BRANCH", help="Branch whose commits trigger the tasks (default: the current one).")
@click.option("--dry-run", is_flag=True, help="Print the task definitions and the changes; change nothing.")
@click.option("--prune", is_flag=True, help="Also delete tasks this file created whose images left it.")
@click.option("--json", "as_json", is_flag=True, help="Print the definitions and changes as JSON.")
def sync_tasks(
    pipelines: tuple[str, ...], config_file: Path, branch: str | None, dry_run: bool, prune: bool, as_json: bool
) -> None:
    """Create or update one ACR task per image that has `acr:` settings and lives on that registry.

    Each task builds the image's context from the origin repository on every commit to BRANCH (commit
    trigger) and whenever its base image is updated (base image trigger), tagged {{.Run.ID}} and
    sha-<12 hex of the commit>. Tasks carry the tags managed-by=pipeline and pipeline-source=<repo>#<file>:
    only those are updated, and with --prune deleted. $PIPELINE_ACR_GIT_TOKEN is the git token ACR
    uses for the commit webhook.

    \b
    Example:
      pipeline acr sync-tasks --dry-run --json
      pipeline acr sync-tasks --branch main --prune
    """
    from pipeline.acr import sync
    from pipeline.config import load_config

    config = load_config(config_file)
    plan = session(config).plan(pipelines, None)
    result = sync.sync_tasks(
        plan, config.file, config.base_dir, branch, prune=prune, dry_run=dry_run, environ=settings().environment
    )
    _print(result, dry_run, as_json)


def _print(result: sync.TaskSync, dry_run: bool, as_json: bool) -> None:
    wanted, skipped, changes = result.wanted, result.skipped, result.changes
    specs: dict[str, TaskSpec] = {w.spec.name: w.spec for w in wanted}
    if as_json:
        data = {
            "dry_run": dry_run,
            "tasks": [
                {"action": c.action, "registry": c.registry, "image": c.image, **_definition(specs.get(c.name), c.name)}
                for c in changes
            ],
            "skipped": [{"image": k, "reason": v} for k, v in skipped.items()],
        }
        echo_json(data)
        return
    verb = "would " if dry_run else ""
    for change in changes:
        click.echo(
            f"{verb}{change.action}: {change.registry}/{change.name}" + (f" ({change.image})" if change.image else "")
        )
        spec = specs.get(change.name)
        if dry_run and spec is not None and change.action != "delete":
            for field, value in spec.as_dict().items():
                if field != "name":
                    click.echo(f"    {field}: {json.dumps(value)}")
    for image, reason in skipped.items():
        click.echo(f"no task for {image}: {reason}", err=True)
    if not changes:
        click.echo("no image has ACR settings: nothing to sync", err=True)


def _definition(spec: TaskSpec | None, name: str) -> dict[str, object]:
    return spec.as_dict() if spec is not None else {"name": name}
