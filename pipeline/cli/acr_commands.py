"""`pipeline acr ...`: ACR tasks that rebuild images on commits and base image updates."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import click

from pipeline.acr.tasks import TaskChange, TaskSpec, WantedTask, task_changes, task_source, wanted_tasks
from pipeline.cli.common import config_option, session
from pipeline.config import load_config
from pipeline.config.schema import AcrSpec
from pipeline.errors import UsageError

GIT_TOKEN_VARIABLE = "PIPELINE_ACR_GIT_TOKEN"  # a PAT ACR uses to register the commit webhook


@click.group()
def acr() -> None:
    """Azure Container Registry: tasks that build on commits without a running `pipeline`."""


@acr.command("sync-tasks")
@click.argument("pipelines", nargs=-1)
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
    import git  # GitPython: the repository root, the contexts are relative to it

    config = load_config(config_file)
    plan = session(config).plan(pipelines, None)
    try:
        repo = git.Repo(config.base_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{config.file}: not in a git repository; ACR tasks build from a git remote") from None
    remote_url = plan.context.source_url
    branch = branch or plan.context.git_branch
    if not remote_url or not branch or repo.working_tree_dir is None:
        raise UsageError("ACR tasks need an 'origin' remote and a branch (check out one, or pass --branch)")
    root = Path(repo.working_tree_dir)
    source = task_source(remote_url, root, config.file)
    wanted, skipped = wanted_tasks(plan, remote_url, branch, root, source)
    registries = _registries(image.acr for image in plan.images.values())
    changes: list[TaskChange] = []
    if registries:
        changes = _sync(registries, wanted, source, prune, dry_run)
    _print(wanted, skipped, changes, dry_run, as_json)


def _registries(specs: Iterable[AcrSpec | None]) -> dict[tuple[str, str, str, str], AcrSpec]:
    found: dict[tuple[str, str, str, str], AcrSpec] = {}
    for spec in specs:
        if spec is not None:
            found.setdefault(_key(spec), spec)
    return found


def _sync(
    registries: dict[tuple[str, str, str, str], AcrSpec],
    wanted: list[WantedTask],
    source: str,
    prune: bool,
    dry_run: bool,
) -> list[TaskChange]:
    from pipeline.acr.client import AcrTasksClient, azure_credential  # the Azure SDK is slow to import

    credential = azure_credential(os.environ)
    changes: list[TaskChange] = []
    for key, spec in registries.items():
        client = AcrTasksClient(credential, spec)
        try:
            mine = [w.spec for w in wanted if _key(w.acr) == key]
            details = {s.name: s for s in client.tasks()}
            existing = {name: (tags, details.get(name)) for name, tags in client.task_tags().items()}
            planned = task_changes(spec.registry, mine, existing, prune, source)
            changes.extend(planned)
            if dry_run:
                continue
            location = client.location() if any(c.action in ("create", "update") for c in planned) else ""
            for change in planned:
                if change.action in ("create", "update") and change.spec is not None:
                    client.put_task(change.spec, location, os.environ.get(GIT_TOKEN_VARIABLE))
                elif change.action == "delete":
                    client.delete_task(change.name)
        finally:
            client.close()
    return changes


def _key(spec: AcrSpec) -> tuple[str, str, str, str]:
    return (spec.arm_endpoint, spec.subscription, spec.resource_group, spec.registry)


def _print(
    wanted: list[WantedTask], skipped: dict[str, str], changes: list[TaskChange], dry_run: bool, as_json: bool
) -> None:
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
        click.echo(json.dumps(data, indent=2))
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
