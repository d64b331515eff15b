"""ACR tasks that rebuild pipelines.yaml's images on git commits and base image updates, with no
`pipeline` process running: their definitions, and the changes that bring a registry in line. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.config.resolved import AcrSettings
from pipeline.config.templates import render
from pipeline.errors import ConfigError
from pipeline.plan import Plan, PlannedImage

OWNER_TAG, OWNER = "managed-by", "pipeline"  # tasks carrying this tag are ours to update and prune
SOURCE_TAG = "pipeline-source"  # which repository and pipelines.yaml defined the task
IMAGE_TAG = "pipeline-image"
# ACR Tasks' Go templates: every run gets its own tag, plus pipeline's sha-<12 hex> tag of the commit.
RUN_TAG = "{{.Run.ID}}"
COMMIT = "{{.Run.Commit}}"
SHORT_COMMIT = "{{slice .Run.Commit 0 12}}"
SHA_TAG = f"sha-{SHORT_COMMIT}"
BASE_IMAGE_TRIGGER = "Runtime"  # ACR's baseImageTriggerType: the runtime (and build-time) bases of the run


@dataclass(frozen=True)
class TaskSpec:
    """An ACR task: a docker build step with a git commit trigger and a base image update trigger."""

    name: str
    repository_url: str
    branch: str
    context_path: str  # <repository_url>#<branch>[:<directory>]
    dockerfile: str  # relative to the context
    image_names: tuple[str, ...]  # relative to the registry's login server
    build_args: Mapping[str, str]
    target: str | None
    os: str
    architecture: str
    tags: Mapping[str, str]
    timeout: int = 3600
    source_control_type: str = "Github"
    # ACR's own trigger: rebuild when a base image the task's last run pulled is updated in place (same
    # tag). Every task pipeline writes has it; a task read back with it disabled or missing compares
    # unequal, so `sync-tasks` turns it back on.
    base_image_trigger: str | None = BASE_IMAGE_TRIGGER

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "platform": f"{self.os.lower()}/{self.architecture}",
            "context": self.context_path,
            "dockerfile": self.dockerfile,
            "images": list(self.image_names),
            "build_args": dict(self.build_args),
            "target": self.target,
            "triggers": {
                "commit": {"type": self.source_control_type, "repository": self.repository_url, "branch": self.branch},
                "base_image_update": self.base_image_trigger,
            },
            "timeout": self.timeout,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class WantedTask:
    image: str  # plan key
    acr: AcrSettings
    spec: TaskSpec


@dataclass(frozen=True)
class TaskChange:
    action: Literal["create", "update", "unchanged", "delete"]
    registry: str
    name: str
    image: str | None = None
    spec: TaskSpec | None = field(default=None, compare=False)


def platform_properties(platform: str | None) -> tuple[str, str, str | None]:
    """`windows/amd64` -> ("Windows", "amd64", None); `linux/arm64/v8` -> ("Linux", "arm64", "v8")."""
    parts = (platform or "linux/amd64").split("/")
    os_name = {"linux": "Linux", "windows": "Windows"}.get(parts[0].lower())
    if os_name is None or len(parts) > 3:
        raise ConfigError(f"platform '{platform}': ACR Tasks build linux/* and windows/* (os/arch[/variant])")
    return os_name, parts[1] if len(parts) > 1 else "amd64", parts[2] if len(parts) > 2 else None


def task_name(image_key: str) -> str:
    """A valid task name (5-50 of [A-Za-z0-9_-]) for `pipeline/image`, stable across runs."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", image_key)
    if len(name) < 5:
        name = f"pipeline-{name}"
    if len(name) > 50:
        name = f"{name[:41]}-{hashlib.sha256(image_key.encode()).hexdigest()[:8]}"
    return name


def https_repository_url(url: str) -> str:
    """`git@github.com:org/repo.git` -> `https://github.com/org/repo.git` (what ACR triggers take)."""
    scp = re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+)", url)
    return f"https://{scp.group(1)}/{scp.group(2)}" if scp else url


def source_control_type(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    if host == "github.com" or host.endswith(".github.com"):
        return "Github"
    if host == "dev.azure.com" or host.endswith(".visualstudio.com"):
        return "VisualStudioTeamService"
    raise ConfigError(f"ACR commit triggers need a GitHub or Azure DevOps repository; origin is {url}")


def task_source(repository_url: str, repo_root: Path, config_file: Path) -> str:
    """The value of SOURCE_TAG: the repository and the pipelines.yaml in it that define the tasks."""
    relative = config_file.resolve().relative_to(repo_root.resolve()).as_posix()
    return f"{https_repository_url(repository_url)}#{relative}"


def wanted_tasks(
    plan: Plan, repository_url: str, branch: str, repo_root: Path, source: str
) -> tuple[list[WantedTask], dict[str, str]]:
    """One task per image that has `acr:` settings and lives on that registry; the others with why not."""
    url = https_repository_url(repository_url)
    kind = source_control_type(url)
    wanted: list[WantedTask] = []
    skipped: dict[str, str] = {}
    for key, image in plan.images.items():
        if image.acr is None:
            skipped[key] = "no 'acr:' settings for its pipeline"
            continue
        server = image.acr.server
        if image.repository.registry != server:
            skipped[key] = f"its repository {image.repository} is not on the ACR login server {server}"
            continue
        wanted.append(WantedTask(key, image.acr, _task(plan, image, image.acr, url, kind, branch, repo_root, source)))
    return wanted, skipped


def _task(
    plan: Plan, image: PlannedImage, acr: AcrSettings, url: str, kind: str, branch: str, repo_root: Path, source: str
) -> TaskSpec:
    try:
        directory = image.context.relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{image.key}: context {image.context} is outside the repository {repo_root}") from None
    os_name, architecture, _ = platform_properties(image.platform)
    values = {
        "version": "dev",
        "major": "0",
        "minor": "0",
        "patch": "0",
        "git.sha": COMMIT,
        "git.short_sha": SHORT_COMMIT,
        "git.branch": "{{.Run.Branch}}",
    }
    for other in plan.images.values():
        if other.pipeline == image.pipeline:
            # The dependency as built from the same commit (by its own task, or by `pipeline run`).
            values[f"images.{other.name}"] = f"{other.repository}:{SHA_TAG}"
    return TaskSpec(
        name=task_name(image.key),
        repository_url=url,
        branch=branch,
        context_path=f"{url}#{branch}" + (f":{directory}" if directory != "." else ""),
        dockerfile=Path(image.dockerfile).relative_to(image.context).as_posix(),
        image_names=tuple(f"{image.repository.path}:{tag}" for tag in (RUN_TAG, SHA_TAG)),
        build_args={k: render(v, values) for k, v in image.build_args.items()},
        target=image.target,
        os=os_name,
        architecture=architecture,
        tags={OWNER_TAG: OWNER, SOURCE_TAG: source, IMAGE_TAG: image.key},
        timeout=min(max(acr.timeout, 300), 28800),
        source_control_type=kind,
    )


def task_changes(
    registry: str,
    wanted: list[TaskSpec],
    existing: Mapping[str, tuple[Mapping[str, str], TaskSpec | None]],
    prune: bool,
    source: str,
) -> list[TaskChange]:
    """What to do in one registry. `existing`: task name -> (its tags, its definition if readable)."""
    changes: list[TaskChange] = []
    names = {spec.name for spec in wanted}
    for spec in wanted:
        found = existing.get(spec.name)
        if found is None:
            changes.append(TaskChange("create", registry, spec.name, spec.tags[IMAGE_TAG], spec))
            continue
        tags, current = found
        if tags.get(OWNER_TAG) != OWNER:
            raise ConfigError(
                f"registry {registry} already has a task '{spec.name}' that pipeline does not manage "
                f"(no tag {OWNER_TAG}={OWNER}); rename or delete it"
            )
        action: Literal["update", "unchanged"] = "unchanged" if current == spec else "update"
        changes.append(TaskChange(action, registry, spec.name, spec.tags[IMAGE_TAG], spec))
    if prune:
        for name, (tags, _) in sorted(existing.items()):
            if name not in names and tags.get(OWNER_TAG) == OWNER and tags.get(SOURCE_TAG) == source:
                changes.append(TaskChange("delete", registry, name, tags.get(IMAGE_TAG)))
    return changes
