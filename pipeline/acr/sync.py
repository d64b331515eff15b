"""Bringing ACR registries' tasks in line with pipelines.yaml (`pipeline acr sync-tasks`): the wanted tasks
from the plan and the git checkout, then per registry the changes, applied unless it is a dry run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.acr.tasks import TaskChange, WantedTask, task_changes, task_source, wanted_tasks
from pipeline.config.resolved import AcrSettings
from pipeline.errors import UsageError
from pipeline.plan import Plan
from pipeline.vcs.info import find_repository

GIT_TOKEN_VARIABLE = "PIPELINE_ACR_GIT_TOKEN"  # a PAT ACR uses to register the commit webhook

RegistryKey = tuple[str, str, str, str]  # ARM endpoint, subscription, resource group, registry


@dataclass(frozen=True)
class TaskSync:
    """What a sync found and did: the tasks wanted, the images that get none (with why), the changes
    (made, or with dry_run only planned), in registry order."""

    wanted: list[WantedTask]
    skipped: dict[str, str]
    changes: list[TaskChange]


def sync_tasks(
    plan: Plan,
    config_file: Path,
    base_dir: Path,
    branch: str | None,
    *,
    prune: bool,
    dry_run: bool,
    environ: Mapping[str, str],
) -> TaskSync:
    """One task per image of `plan` with `acr:` settings, built from the origin remote on commits to `branch`
    (default: the checked-out one). `environ` holds the Azure credentials and GIT_TOKEN_VARIABLE."""
    # The repository root: task contexts are relative to it.
    repo = find_repository(base_dir)
    if repo is None:
        raise UsageError(f"{config_file}: not in a git repository; ACR tasks build from a git remote")
    remote_url = plan.context.source_url
    branch = branch or plan.context.git_branch
    if not remote_url or not branch or repo.work_tree is None:
        raise UsageError("ACR tasks need an 'origin' remote and a branch (check out one, or pass --branch)")
    root = repo.work_tree
    source = task_source(remote_url, root, config_file)
    wanted, skipped = wanted_tasks(plan, remote_url, branch, root, source)
    registries = _registries(image.acr for image in plan.images.values())
    changes: list[TaskChange] = []
    if registries:
        changes = _sync(registries, wanted, source, prune, dry_run, environ)
    return TaskSync(wanted, skipped, changes)


def _registries(specs: Iterable[AcrSettings | None]) -> dict[RegistryKey, AcrSettings]:
    found: dict[RegistryKey, AcrSettings] = {}
    for spec in specs:
        if spec is not None:
            found.setdefault(_key(spec), spec)
    return found


def _sync(
    registries: dict[RegistryKey, AcrSettings],
    wanted: list[WantedTask],
    source: str,
    prune: bool,
    dry_run: bool,
    environ: Mapping[str, str],
) -> list[TaskChange]:
    from pipeline.acr.client import AcrTasksClient, azure_credential  # the Azure SDK is slow to import

    credential = azure_credential(environ)
    git_token = environ.get(GIT_TOKEN_VARIABLE)
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
                    client.put_task(change.spec, location, git_token)
                elif change.action == "delete":
                    client.delete_task(change.name)
        finally:
            client.close()
    return changes


def _key(spec: AcrSettings) -> RegistryKey:
    return (spec.arm_endpoint, spec.subscription, spec.resource_group, spec.registry)
