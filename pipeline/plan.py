"""A run's plan: which images, in what order, with which repositories, build args and tags. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.common.checkout import Checkout
from pipeline.config.positions import KeyPath, PositionIndex, format_path
from pipeline.config.resolve import engine_builds, matching_variant
from pipeline.config.resolved import AcrSettings, Notification, ResolvedImage, Signing, resolve_images
from pipeline.config.resolved import BuildSecret as BuildSecret  # the builders read it from the plan
from pipeline.config.schema import ConfigSpec
from pipeline.config.templates import placeholders, render
from pipeline.errors import ConfigError, UsageError
from pipeline.graph import topological_order
from pipeline.registry.reference import Repository, parse_repository, validate_tag
from pipeline.vcs import probes
from pipeline.versioning import FLOATING_KINDS, RESERVED_TAG_PREFIXES, TagSet, tag_set, version_tag

if TYPE_CHECKING:
    import semver  # a run's version; imported where one is parsed (pipeline.versioning)

# Labels every built image carries, named by the OCI image annotations spec
# (https://github.com/opencontainers/image-spec/blob/main/annotations.md); release and cache read them back.
TITLE_LABEL = "org.opencontainers.image.title"
CREATED_LABEL = "org.opencontainers.image.created"
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
SOURCE_LABEL = "org.opencontainers.image.source"
PR_BUILD_PREFIX = "pr-"  # a pull request's build tags: pr-sha-<commit> (see cache.scope)


def sanitize_tag(text: str) -> str:
    """Any text made safe as (part of) a Docker tag: `feature/x` -> `feature-x`."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-") or "x"
    return cleaned[:128]


@dataclass(frozen=True)
class RunContext:
    """Facts about this run that images are built with: version and git state."""

    version: semver.Version | None = None
    git_sha: str | None = None
    git_branch: str | None = None
    git_pr: str | None = None  # the pull/merge request number of a CI build of one
    source_url: str | None = None
    created: datetime | None = None  # the commit time; None outside git
    dirty: bool = False  # uncommitted changes to tracked files
    earlier_commits: tuple[str, ...] = ()  # HEAD's first-parent ancestors, newest first
    source_root: Path | None = None  # the git working tree's top (provenance paths are relative to it)
    reason: str | None = None  # why a trigger ran this (`base update: <ref> <old> → <new>`); provenance names it

    @classmethod
    def of(cls, checkout: Checkout) -> RunContext:
        """The checkout's part of a run's facts (ci.checkout_of makes it the same for every command)."""
        return cls(git_sha=checkout.sha, git_branch=checkout.branch, git_pr=checkout.pr, source_root=checkout.root)

    def template_values(self, *, for_tags: bool = False) -> dict[str, str]:
        """The placeholders' values. `git.branch` and `git.pr` are absent when the build has none (a tag
        build, a pull request from a fork, a detached HEAD outside CI; not a pull request): a tag using them
        is left out and a build arg using them is an error (`missing_placeholders`), never a made-up value."""
        branch = self.git_branch
        return (
            {
                "version": version_tag(self.version) if self.version else "dev",
                "major": str(self.version.major) if self.version else "0",
                "minor": str(self.version.minor) if self.version else "0",
                "patch": str(self.version.patch) if self.version else "0",
                "git.sha": self.git_sha or "unknown",
                "git.short_sha": (self.git_sha or "unknown")[:12],
            }
            | ({"git.branch": sanitize_tag(branch) if for_tags else branch} if branch else {})
            | ({"git.pr": self.git_pr} if self.git_pr else {})
        )

    def missing_placeholders(self, template: str) -> list[str]:
        """The names `template` uses that this build has no value for: `git.branch` on no branch, `git.pr`
        outside a pull/merge request."""
        missing = {"git.branch": self.git_branch is None, "git.pr": self.git_pr is None}
        return [name for name in dict.fromkeys(placeholders(template)) if missing.get(name)]


@dataclass(frozen=True)
class Engine:
    """Where local builds run: a Docker engine (`host` URL or docker `context`) or a buildx builder.
    The implicit engine of a config without `engines:` is DEFAULT_ENGINE: DOCKER_HOST, or the socket."""

    name: str
    host: str | None = None
    context: str | None = None
    buildx_builder: str | None = None
    cert_path: Path | None = None
    jobs: int | None = None  # None: the run's --jobs
    os: str | None = None  # linux or windows; None (the implicit engine): whatever it is asked to build
    os_version: str | None = None  # a Windows engine's version

    def builds(self, platform: str | None, os_version: str | None) -> bool:
        """Whether this engine can build for `platform` (None: its own) and Windows version."""
        return platform is None or engine_builds(self.os, self.os_version, platform, os_version)


DEFAULT_ENGINE = "default"


@dataclass(frozen=True)
class Variant:
    """One platform (and Windows version) an image is built for; the image's index lists them all."""

    name: str
    platform: str
    os_version: str | None
    build_args: Mapping[str, str]  # the image's with the variant's over them; may hold {{ placeholders }}
    builder: str
    engine: str | None


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
    sign: Signing | None = None  # key path made absolute
    signature_storage: str = "legacy"
    reuse: str = "any"  # trusted | any | never: which earlier build with these inputs may be reused (cache.scope)
    builder: str = "docker"
    acr: AcrSettings | None = None
    # Dependencies left out of a partial run (`run --since`, triggers): keys of Plan.pinned.
    pinned_dependencies: tuple[str, ...] = ()
    network: str | None = None  # docker build --network; None: the engine's default
    secrets: tuple[BuildSecret, ...] = ()
    engine: str | None = None  # pinned to this engine (a key of Plan.engines); None: any
    # Built once per variant and published as an image index; () builds one image for `platform`.
    variants: tuple[Variant, ...] = ()
    os_version: str | None = None  # a variant's view: the Windows version it is built for
    variant: str | None = None  # a variant's view: its name
    # `tags: {variants: true}`: each variant's own tags (2.1.5-ltsc2019), by variant name.
    variant_tags: Mapping[str, TagSet] = field(default_factory=dict)
    paths: tuple[str, ...] = ()  # extra `paths:` globs (`changed`), relative to the pipelines file
    notify: Notification | None = None  # its pipeline's `notify:` block (the pipeline's own, else the top level's)

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.name}"

    @property
    def label(self) -> str:
        """How progress and errors name it: `pipeline/image`, or `pipeline/image[variant]` for a variant."""
        return f"{self.key}[{self.variant}]" if self.variant else self.key

    def variant_view(self, variant: Variant) -> PlannedImage:
        """The image as one of its variants builds it: that platform, build args, builder and engine."""
        return replace(
            self,
            platform=variant.platform,
            os_version=variant.os_version,
            build_args=variant.build_args,
            builder=variant.builder,
            engine=variant.engine,
            variants=(),
            variant=variant.name,
        )


@dataclass(frozen=True)
class Plan:
    images: Mapping[str, PlannedImage]  # by key, in a valid build order
    context: RunContext = field(default_factory=RunContext)
    # Images left out of this run that images in it reference: key -> `repo@digest` already pushed.
    pinned: Mapping[str, str] = field(default_factory=dict)
    # Where local builds run, by name: `engines:`, else the one engine of the environment (DEFAULT_ENGINE).
    engines: Mapping[str, Engine] = field(default_factory=lambda: default_engines())

    def order(self) -> list[str]:
        return list(self.images)

    def subset(self, keys: set[str], pinned: Mapping[str, str]) -> Plan:
        """Only `keys`; their dependencies outside `keys` must be given as `pinned` references."""
        images = {}
        for key, image in self.images.items():
            if key in keys:
                outside = [d for d in image.depends_on if d not in keys]
                missing = [d for d in outside if d not in pinned]
                if missing:
                    raise ValueError(f"{key} depends on {missing[0]}, which is neither built nor pinned")
                images[key] = replace(
                    image,
                    depends_on=tuple(d for d in image.depends_on if d in keys),
                    pinned_dependencies=tuple(outside),
                )
        return Plan(images=images, context=self.context, pinned=dict(pinned), engines=self.engines)

    def notifications(self) -> dict[str, Notification]:
        """The `notify:` block of each pipeline of the plan that has one (its own, else the top level's),
        in the plan's order."""
        found: dict[str, Notification] = {}
        for image in self.images.values():
            if image.notify is not None:
                found.setdefault(image.pipeline, image.notify)
        return found

    def outside_dependencies(self, keys: set[str]) -> set[str]:
        """Direct dependencies of `keys` that are not themselves in `keys`."""
        return {d for key in keys for d in self.images[key].depends_on if d not in keys}


def select_pipelines(spec: ConfigSpec, names: list[str]) -> list[str]:
    if not names:
        return list(spec.pipelines)
    for name in names:
        if name not in spec.pipelines:
            close = difflib.get_close_matches(name, list(spec.pipelines), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (pipelines: {', '.join(spec.pipelines)})"
            raise UsageError(f"no pipeline named '{name}'{hint}")
    return list(dict.fromkeys(names))


VERSION_NAMES = frozenset({"version", "major", "minor", "patch"})


def version_dependent(images: Mapping[str, ResolvedImage]) -> set[str]:
    """The keys of `images` whose inputs change with the run's version: a build arg of the image or of one
    of its variants uses `{{ version }}`, `{{ major }}`, `{{ minor }}` or `{{ patch }}`, or an image it
    depends on is such an image (its digest, an input, then changes too). Their build tag names the version
    too (`sha-<commit>-<version>`), so that `sha-<commit>` never moves between runs of one commit."""
    graph = {key: tuple(f"{image.pipeline}/{dep}" for dep in image.depends_on) for key, image in images.items()}
    found: set[str] = set()
    for key in topological_order(graph):
        image = images[key]
        args = [*image.build_args.values()]
        args += [value for v in image.variants for value in v.own_build_args.values()]
        if found.intersection(graph[key]) or any(VERSION_NAMES.intersection(placeholders(a)) for a in args):
            found.add(key)
    return found


def _tags_for(
    image: ResolvedImage,
    context: RunContext,
    positions: PositionIndex | None,
    versioned_build: bool,
    trigger_tags: tuple[str, ...] = (),
    variant: str | None = None,
) -> TagSet:
    """The image's tags; with `variant`, the per-variant tags (`2.1.5-ltsc2019`: the suffix, then the name)."""
    policy = image.tags
    suffix = policy.suffix + (f"-{variant}" if variant else "")
    values = context.template_values(for_tags=True)
    extra = []
    for template in [*policy.extra, *trigger_tags]:
        if context.version is None and VERSION_NAMES.intersection(placeholders(template)):
            continue  # a version tag template means nothing in a run without a version
        if context.missing_placeholders(template):
            # Like a version tag without a version: one config serves branch, tag and PR builds.
            continue
        tag = render(template, values)
        try:
            validate_tag(tag + suffix)
            if tag.startswith(RESERVED_TAG_PREFIXES):  # e.g. `{{ git.branch }}` on a branch named `sha-…`
                raise ConfigError("it starts like a tag the run writes itself (inputs-, sha-, pr-sha-)")
        except ConfigError as exc:
            where: KeyPath = (*image.at, "tags")
            message = f"extra tag template '{template}' renders to an invalid tag: {exc}"
            if positions is not None:
                raise positions.error(where, message) from None
            raise ConfigError(f"{format_path(where)}: {message}") from None
        extra.append(tag + suffix)
    floating = FLOATING_KINDS if policy.floating is None else policy.floating
    tags = tag_set(
        context.version,
        context.git_sha,
        suffix=suffix,
        floating=floating,
        extra=extra,
        dirty=context.dirty,
        versioned_build=versioned_build,
    )
    if context.git_pr is not None:
        # A pull request's build (unreviewed code) never takes a tag a branch build reads as a cache
        # source (`sha-<commit>`: GitLab builds the branch's own commit, later on the target branch).
        tags = replace(tags, build=tuple(PR_BUILD_PREFIX + tag for tag in tags.build))
    return tags


_MISSING_WHY = {
    "git.pr": "this is no pull/merge request build (CI sets the number: GitHub's refs/pull/N/merge, GitLab's "
    "CI_MERGE_REQUEST_IID, Azure's SYSTEM_PULLREQUEST_PULLREQUESTNUMBER or _PULLREQUESTID); run it only in "
    "pull request builds",
    "git.branch": "this build is on no branch (a tag build, a pull/merge request from a fork, or a detached "
    "HEAD outside CI; see docs/ci.md, Branch and pull request); run it only in branch builds",
}


def _check_placeholders(
    template: str, context: RunContext, where: KeyPath, positions: PositionIndex | None, what: str
) -> None:
    """`{{ git.pr }}` or `{{ git.branch }}` in a build arg where the build has no value for it is an error, not
    an empty or made-up value (a tag template using it is left out instead)."""
    missing = context.missing_placeholders(template)
    if missing:
        message = f"{what} template '{template}' uses {{{{ {missing[0]} }}}}, but {_MISSING_WHY[missing[0]]}"
        if positions is not None:
            raise positions.error(where, message)
        raise ConfigError(f"{format_path(where)}: {message}")


def _storage_for(spec: ConfigSpec, repository: Repository) -> str:
    settings = spec.registries.get(repository.registry)
    return settings.signature_storage if settings else "legacy"


def default_engines() -> dict[str, Engine]:
    """The engines of a config without `engines:`: DOCKER_HOST's (or the local socket) alone."""
    return {DEFAULT_ENGINE: Engine(DEFAULT_ENGINE)}


def _engines(spec: ConfigSpec, base_dir: Path) -> dict[str, Engine]:
    if not spec.engines:
        return default_engines()
    return {
        name: Engine(
            name=name,
            host=engine.host,
            context=engine.context,
            buildx_builder=engine.buildx.builder if engine.buildx else None,
            cert_path=(base_dir / Path(engine.cert_path).expanduser()).resolve() if engine.cert_path else None,
            jobs=engine.jobs,
            os=engine.os,
            os_version=engine.os_version,
        )
        for name, engine in spec.engines.items()
    }


def make_plan(
    spec: ConfigSpec,
    base_dir: Path,
    pipelines: list[str],
    context: RunContext,
    positions: PositionIndex | None = None,
    trigger_tags: Mapping[str, tuple[str, ...]] | None = None,
    resolved: Mapping[str, ResolvedImage] | None = None,
) -> Plan:
    """Plan the named pipelines (all when empty). The config must already have passed its checks;
    `resolved`: its images as they resolved them (LoadedConfig.images), else resolved here."""
    resolved = resolve_images(spec, base_dir) if resolved is None else resolved
    versioned = version_dependent(resolved)
    images: dict[str, PlannedImage] = {}
    for pipeline_name in select_pipelines(spec, pipelines):
        mine = {image.name: image for image in resolved.values() if image.pipeline == pipeline_name}
        extra_tags = (trigger_tags or {}).get(pipeline_name, ())
        for name in topological_order({name: image.depends_on for name, image in mine.items()}):
            image = mine[name]
            for arg, value in image.build_args.items():
                _check_placeholders(value, context, (*image.at, "build_args", arg), positions, "build arg")
            for variant in image.variants:
                for arg, value in variant.own_build_args.items():
                    _check_placeholders(value, context, (*variant.at, "build_args", arg), positions, "build arg")
            # As the checks found it (probes: while `changed` records, asked once for both).
            context_dir = Path(probes.realpath(base_dir / image.context))
            repository = parse_repository(image.repository)
            planned = PlannedImage(
                pipeline=pipeline_name,
                name=name,
                repository=repository,
                context=context_dir,
                dockerfile=context_dir / image.dockerfile,
                build_args=dict(image.build_args),
                depends_on=tuple(f"{pipeline_name}/{dep}" for dep in image.depends_on),
                target=image.target,
                platform=image.platform,
                labels=dict(image.labels),
                tags=_tags_for(image, context, positions, image.key in versioned, extra_tags),
                sign=image.sign,
                reuse=image.reuse,
                builder=image.builder,
                acr=image.acr,
                signature_storage=_storage_for(spec, repository),
                network=image.network,
                secrets=image.secrets,
                engine=image.engine,
                variants=tuple(
                    Variant(v.name, v.platform, v.os_version, dict(v.build_args), v.builder, v.engine)
                    for v in image.variants
                ),
                variant_tags=(
                    {
                        v.name: _tags_for(image, context, positions, image.key in versioned, extra_tags, v.name)
                        for v in image.variants
                    }
                    if image.tags.variants
                    else {}
                ),
                paths=image.paths,
                notify=image.notify,
            )
            images[planned.key] = planned
    return Plan(images=images, context=context, engines=_engines(spec, base_dir))


def base_variant(base: PlannedImage, dependant: PlannedImage) -> Variant | None:
    """The variant of `base` that `dependant` (a variant's view) builds on. None when either has no
    variants: the dependant then gets the base's whole image (its index, or its one image)."""
    if dependant.variant is None or not base.variants or dependant.platform is None:
        return None
    keys = [(v.name, v.platform, v.os_version) for v in base.variants]
    name = matching_variant(keys, (dependant.variant, dependant.platform, dependant.os_version))
    return next((v for v in base.variants if v.name == name), None)


def render_build_args(plan: Plan, image: PlannedImage, references: Mapping[str, str]) -> dict[str, str]:
    """Build args with placeholders filled: `{{ images.X }}` from `references` (plan key ->
    `repo@digest`, or a local tag without a push) and the plan's pinned images; the run's values."""
    values = plan.context.template_values()
    for key, reference in {**plan.pinned, **references}.items():
        pipeline, _, name = key.partition("/")
        if pipeline == image.pipeline:
            values[f"images.{name}"] = reference
    return {name: render(value, values) for name, value in image.build_args.items()}
