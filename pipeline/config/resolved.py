"""Inheritance resolved once: top level -> pipeline -> image -> variant, by one table of fields and how each
merges (as buildx bake's `Target.Merge`), into one frozen `ResolvedImage` per image that the checks, the plan
and `changed` read instead of walking the spec again. Pure.

    images = resolve_images(spec, base_dir)
    images["shop/app"].network, images["shop/app"].variants[0].builder
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.config.positions import KeyPath, format_path
from pipeline.config.resolve import declared_variants, default_builder, dependencies_of
from pipeline.config.schema import (
    AcrSpec,
    ConfigSpec,
    ImageSpec,
    NotifyEvent,
    NotifySpec,
    NotifyTarget,
    SignSpec,
    TagPolicy,
)

Level = Literal["top", "pipeline", "image", "variant"]
Merge = Literal["nearest", "merged dict", "merged policy"]


@dataclass(frozen=True)
class Rule:
    """How one field merges and the levels that may set it, farthest first."""

    merge: Merge
    levels: tuple[Level, ...]


# The whole of inheritance. `nearest`: the nearest level that sets it (a value, not None or empty) wins;
# `merged dict`: the farther level's entries with the nearer's over them, by key; `merged policy`: field by
# field of the tag policy, the nearest that sets a field wins. A builder nobody names falls to the top-level
# default only after the Windows rule (`default_builder`); a variant list is the nearest `variants:` or
# `platforms:` (`declared_variants`).
MERGE_TABLE: Mapping[str, Rule] = {
    "registry": Rule("nearest", ("top", "pipeline")),
    "tags": Rule("merged policy", ("top", "pipeline", "image")),
    "sign": Rule("nearest", ("top", "pipeline")),
    "reuse": Rule("nearest", ("top", "pipeline")),
    "acr": Rule("nearest", ("top", "pipeline")),
    "network": Rule("nearest", ("top", "pipeline", "image")),
    "secrets": Rule("merged dict", ("pipeline", "image")),
    "engine": Rule("nearest", ("pipeline", "image", "variant")),
    "builder": Rule("nearest", ("pipeline", "image", "variant")),
    "build_args": Rule("merged dict", ("image", "variant")),
    "notify": Rule("nearest", ("top", "pipeline")),
}

# The owners of one image's settings, by level, and where each is written.
Chain = Mapping[Level, tuple[Any, KeyPath]]


def _settings(name: str, chain: Chain) -> list[tuple[Any, KeyPath]]:
    rule = MERGE_TABLE[name]
    return [
        (getattr(owner, name), (*at, name)) for level in rule.levels if level in chain for owner, at in [chain[level]]
    ]


def nearest(name: str, chain: Chain) -> tuple[Any, KeyPath | None]:
    """The nearest level's setting of `name` and where it is written ((None, None): no level sets it)."""
    for value, at in reversed(_settings(name, chain)):
        if value:
            return value, at
    return None, None


def merged_dict(name: str, chain: Chain) -> tuple[dict[str, Any], KeyPath | None]:
    """The levels' entries of `name` with the nearer's over them, and where the nearest that has any is written."""
    merged: dict[str, Any] = {}
    origin: KeyPath | None = None
    for value, at in _settings(name, chain):
        merged.update(value)
        if value:
            origin = at
    return merged, origin


def merged_policy(name: str, chain: Chain) -> TagPolicy:
    """The tag policy, field by field: the nearest level that sets a field wins."""
    merged: dict[str, object] = {}
    for policy, _ in _settings(name, chain):
        merged.update(policy.model_dump(exclude_none=True))
    return TagPolicy.model_validate(merged)


@dataclass(frozen=True)
class TagRules:
    """The resolved tag policy of an image."""

    floating: tuple[Literal["minor", "major", "latest"], ...] | None  # None: the default kinds
    extra: tuple[str, ...]
    suffix: str
    variants: bool

    @classmethod
    def of(cls, policy: TagPolicy) -> TagRules:
        floating = None if policy.floating is None else tuple(policy.floating)
        return cls(floating, tuple(policy.extra or ()), policy.suffix or "", bool(policy.variants))


@dataclass(frozen=True)
class Signing:
    """How a pipeline signs (`sign:`), the key path made absolute."""

    key: str | None
    keyless: bool
    attest: tuple[str, ...]

    @classmethod
    def of(cls, spec: SignSpec, base_dir: Path) -> Signing:
        key = str((base_dir / spec.key).resolve()) if spec.key is not None else None
        return cls(key=key, keyless=spec.keyless, attest=tuple(spec.attest))


@dataclass(frozen=True)
class AcrSettings:
    """Where `builder: acr` images build (`acr:`): an Azure Container Registry and its Tasks runners."""

    registry: str
    resource_group: str
    subscription: str
    arm_endpoint: str = AcrSpec.model_fields["arm_endpoint"].default
    login_server: str | None = None
    timeout: int = AcrSpec.model_fields["timeout"].default

    @classmethod
    def of(cls, spec: AcrSpec) -> AcrSettings:
        return cls(
            registry=spec.registry,
            resource_group=spec.resource_group,
            subscription=spec.subscription,
            arm_endpoint=spec.arm_endpoint,
            login_server=spec.login_server,
            timeout=spec.timeout,
        )

    @property
    def server(self) -> str:
        """The login server: the registry host that images built here are pushed to."""
        return self.login_server or f"{self.registry.lower()}.azurecr.io"


@dataclass(frozen=True)
class NotifyDestination:
    """One target of a `notify:` block: where a message is posted (`url`, or the variable holding it)."""

    url: str | None
    url_env: str | None
    kind: Literal["generic", "slack"]
    events: tuple[NotifyEvent, ...] | None  # None: the block's events
    secret_env: str | None

    @classmethod
    def of(cls, spec: NotifyTarget) -> NotifyDestination:
        events = None if spec.events is None else tuple(spec.events)
        return cls(url=spec.url, url_env=spec.url_env, kind=spec.kind, events=events, secret_env=spec.secret_env)


@dataclass(frozen=True)
class Notification:
    """The `notify:` block a pipeline's runs report to (its own, else the top level's) and where it is
    written (`owner`, as warnings name it: `notify` or `pipelines.<name>.notify`)."""

    events: tuple[NotifyEvent, ...]
    targets: tuple[NotifyDestination, ...]
    timeout: float
    at: KeyPath = ("notify",)

    @classmethod
    def of(cls, spec: NotifySpec, at: KeyPath = ("notify",)) -> Notification:
        targets = tuple(NotifyDestination.of(t) for t in spec.targets)
        return cls(events=tuple(spec.events), targets=targets, timeout=spec.timeout, at=at)

    @property
    def owner(self) -> str:
        return format_path(self.at)


@dataclass(frozen=True)
class BuildSecret:
    """A build secret's id and where its value is read at build time (never the value itself)."""

    id: str
    env: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class ResolvedVariant:
    """One variant of an image, resolved: its platform, build args (the image's with its own over them),
    builder and engine, and where it is declared."""

    name: str
    at: KeyPath
    platform: str
    os_version: str | None
    own_build_args: Mapping[str, str]  # as written on the variant
    build_args: Mapping[str, str]
    chosen_builder: str | None  # the builder the variant, image or pipeline names (None: none does)
    builder: str
    own_engine: str | None  # the variant's own `engine:`
    engine: str | None  # None on ACR Tasks, whatever engine its image is pinned to


@dataclass(frozen=True)
class ResolvedImage:
    """One image with every inherited setting resolved (paths still relative to the config's directory,
    except secret files and the signing key, made absolute)."""

    pipeline: str
    name: str
    context: str
    dockerfile: str
    target: str | None
    platform: str | None
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    paths: tuple[str, ...]
    depends_on: tuple[str, ...]  # names in the same pipeline: explicit and implied by {{ images.X }}
    repository: str  # as written, else <registry>/<name>
    tags: TagRules
    sign: Signing | None
    reuse: str
    acr: AcrSettings | None
    network: str | None
    secrets: tuple[BuildSecret, ...]
    secrets_at: KeyPath | None  # the `secrets:` that gives the image its secrets, nearest first
    chosen_builder: str | None
    builder: str
    engine: str | None
    engine_at: KeyPath | None
    notify: Notification | None  # the pipeline's `notify:`, else the top level's
    variants: tuple[ResolvedVariant, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.name}"

    @property
    def at(self) -> KeyPath:
        return ("pipelines", self.pipeline, "images", self.name)


def resolve_images(spec: ConfigSpec, base_dir: Path) -> dict[str, ResolvedImage]:
    """Every image of the config resolved, by key (`pipeline/image`), in the config's order."""
    return {
        f"{pipeline_name}/{name}": image
        for pipeline_name, pipeline in spec.pipelines.items()
        for name, image in _resolve_pipeline(spec, pipeline_name, base_dir).items()
    }


def _resolve_pipeline(spec: ConfigSpec, pipeline_name: str, base_dir: Path) -> dict[str, ResolvedImage]:
    pipeline = spec.pipelines[pipeline_name]
    graph = dependencies_of(pipeline)
    return {
        name: _resolve_image(spec, pipeline_name, name, image, graph[name], base_dir)
        for name, image in pipeline.images.items()
    }


def _resolve_image(
    spec: ConfigSpec, pipeline_name: str, name: str, image: ImageSpec, depends_on: tuple[str, ...], base_dir: Path
) -> ResolvedImage:
    """One image with every inherited field taken from the nearest level that sets it (image, pipeline, top)."""
    at: KeyPath = ("pipelines", pipeline_name, "images", name)
    pipeline = spec.pipelines[pipeline_name]
    chain: Chain = {"top": (spec, ()), "pipeline": (pipeline, ("pipelines", pipeline_name)), "image": (image, at)}
    registry, _ = nearest("registry", chain)
    sign, _ = nearest("sign", chain)
    acr, _ = nearest("acr", chain)
    reuse, _ = nearest("reuse", chain)
    network, _ = nearest("network", chain)
    secrets, secrets_at = merged_dict("secrets", chain)
    chosen, _ = nearest("builder", chain)
    engine, engine_at = nearest("engine", chain)
    notify, notify_at = nearest("notify", chain)
    variants = _resolve_variants(spec, pipeline_name, name, chain)
    return ResolvedImage(
        pipeline=pipeline_name,
        name=name,
        context=image.context,
        dockerfile=image.dockerfile,
        target=image.target,
        platform=image.platform,
        build_args=dict(image.build_args),
        labels=dict(image.labels),
        paths=tuple(image.paths),
        depends_on=depends_on,
        repository=image.repository or f"{registry}/{name}",
        tags=TagRules.of(merged_policy("tags", chain)),
        sign=Signing.of(sign, base_dir) if sign is not None else None,
        # Unset: `trusted` where the pipeline signs (what it signs must be what it built or could
        # verify), else `any` (docs/reuse-and-trust.md).
        reuse=reuse or ("trusted" if sign is not None else "any"),
        acr=AcrSettings.of(acr) if acr is not None else None,
        network=network,
        secrets=_build_secrets(secrets, base_dir),
        secrets_at=secrets_at,
        chosen_builder=chosen,
        builder=default_builder(spec, chosen, image.platform, None),
        engine=engine,
        engine_at=engine_at,
        notify=Notification.of(notify, notify_at) if notify is not None and notify_at is not None else None,
        variants=variants,
    )


def _resolve_variants(spec: ConfigSpec, pipeline_name: str, name: str, chain: Chain) -> tuple[ResolvedVariant, ...]:
    """The image's variants, each with the builder, engine and build args its own level adds to the image's chain."""
    variants = []
    for declared in declared_variants(spec, pipeline_name, name):
        variant_chain: Chain = {**chain, "variant": (declared.spec, declared.at)}
        variant_chosen, _ = nearest("builder", variant_chain)
        variant_builder = default_builder(spec, variant_chosen, declared.spec.platform, declared.spec.os_version)
        variant_engine, _ = nearest("engine", variant_chain)
        variants.append(
            ResolvedVariant(
                name=declared.name,
                at=declared.at,
                platform=declared.spec.platform,
                os_version=declared.spec.os_version,
                own_build_args=dict(declared.spec.build_args),
                build_args=merged_dict("build_args", variant_chain)[0],
                chosen_builder=variant_chosen,
                builder=variant_builder,
                own_engine=declared.spec.engine,
                engine=None if variant_builder == "acr" else variant_engine,
            )
        )
    return tuple(variants)


def _build_secrets(secrets: Mapping[str, Any], base_dir: Path) -> tuple[BuildSecret, ...]:
    """The image's build secrets, sorted by id: each read from its variable or its file (relative to the
    config's directory)."""
    return tuple(
        BuildSecret(
            id=secret_id,
            env=source.env,
            file=(base_dir / Path(source.file).expanduser()).resolve() if source.file else None,
        )
        for secret_id, source in sorted(secrets.items())
    )
