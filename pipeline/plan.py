"""A run's plan: which images, in what order, with which repositories, build args and tags. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import semver

from pipeline.config.schema import ConfigSpec
from pipeline.errors import UsageError
from pipeline.graph import dependencies_of, topological_order
from pipeline.registry.reference import Repository, parse_repository
from pipeline.versioning import TagSet, tag_set, version_tag


@dataclass(frozen=True)
class RunContext:
    """Facts about this run that images are built with: version and git state."""

    version: semver.Version | None = None
    git_sha: str | None = None
    git_branch: str | None = None
    source_url: str | None = None
    created: datetime | None = None  # the commit time; None outside git

    def template_values(self) -> dict[str, str]:
        return {
            "version": version_tag(self.version) if self.version else "dev",
            "git.sha": self.git_sha or "unknown",
            "git.short_sha": (self.git_sha or "unknown")[:12],
            "git.branch": self.git_branch or "unknown",
        }


@dataclass(frozen=True)
class PlannedImage:
    pipeline: str
    name: str
    repository: Repository
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]  # may hold {{ placeholders }}; rendered at build time
    depends_on: tuple[str, ...]  # keys of images in the same plan
    target: str | None
    platform: str | None
    labels: Mapping[str, str]
    tags: TagSet

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.name}"


@dataclass(frozen=True)
class Plan:
    images: Mapping[str, PlannedImage]  # by key, in a valid build order
    context: RunContext = field(default_factory=RunContext)

    def order(self) -> list[str]:
        return list(self.images)


def select_pipelines(spec: ConfigSpec, names: list[str]) -> list[str]:
    if not names:
        return list(spec.pipelines)
    for name in names:
        if name not in spec.pipelines:
            close = difflib.get_close_matches(name, list(spec.pipelines), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (pipelines: {', '.join(spec.pipelines)})"
            raise UsageError(f"no pipeline named '{name}'{hint}")
    return list(dict.fromkeys(names))


def repository_for(spec: ConfigSpec, pipeline: str, image: str) -> Repository:
    image_spec = spec.pipelines[pipeline].images[image]
    if image_spec.repository:
        return parse_repository(image_spec.repository)
    prefix = spec.pipelines[pipeline].registry or spec.registry
    return parse_repository(f"{prefix}/{image}")


def make_plan(spec: ConfigSpec, base_dir: Path, pipelines: list[str], context: RunContext) -> Plan:
    """Plan the named pipelines (all when empty). The config must already have passed its checks."""
    images: dict[str, PlannedImage] = {}
    tags = tag_set(context.version, context.git_sha)
    for pipeline_name in select_pipelines(spec, pipelines):
        pipeline = spec.pipelines[pipeline_name]
        graph = dependencies_of(pipeline)
        for name in topological_order(graph):
            image = pipeline.images[name]
            context_dir = (base_dir / image.context).resolve()
            planned = PlannedImage(
                pipeline=pipeline_name,
                name=name,
                repository=repository_for(spec, pipeline_name, name),
                context=context_dir,
                dockerfile=context_dir / image.dockerfile,
                build_args=dict(image.build_args),
                depends_on=tuple(f"{pipeline_name}/{dep}" for dep in graph[name]),
                target=image.target,
                platform=image.platform,
                labels=dict(image.labels),
                tags=tags,
            )
            images[planned.key] = planned
    return Plan(images=images, context=context)
