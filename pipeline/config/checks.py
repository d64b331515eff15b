"""Checks the schema can't express: paths exist, names resolve, references parse, no cycles."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.config.arguments import argument_problems
from pipeline.config.paths import escape_problem, glob_problem, is_dir, is_file, repository_root
from pipeline.config.platform import platform_problem
from pipeline.config.positions import KeyPath, PositionIndex, ordered
from pipeline.config.resolve import declared_variants, dependencies_of, engine_builds, matching_variant
from pipeline.config.resolved import ResolvedImage, ResolvedVariant, resolve_images
from pipeline.config.schema import (
    ConfigSpec,
    EngineSpec,
    ImageSpec,
    NotifySpec,
    PipelineSpec,
    SecretSource,
    SignSpec,
    TagPolicy,
    TriggerRule,
)
from pipeline.config.templates import TemplateSyntaxError, image_references, render, unknown_names
from pipeline.errors import ConfigError, ConfigProblem
from pipeline.graph import find_cycle
from pipeline.registry.platforms import parse_platform, platform_text, windows_build
from pipeline.registry.reference import parse_repository, validate_prefix, validate_registry_host, validate_tag
from pipeline.versioning import RESERVED_TAG, RESERVED_TAG_PREFIXES

ACR_OPERATING_SYSTEMS = ("linux", "windows")


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Findings:
    """The mistakes found so far. Each check reports the first mistake of what it looks at (an image, an
    engine, a trigger...) and the next check goes on, so that one run of the checks lists them all."""

    def __init__(self, positions: PositionIndex) -> None:
        self.positions = positions
        self.problems: list[ConfigProblem] = []

    @contextmanager
    def each(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as exc:
            self.problems += exc.problems or [self.positions.problem((), str(exc))]

    def raise_any(self) -> None:
        if self.problems:
            raise ConfigError(problems=ordered(self.problems))


def check_config(
    spec: ConfigSpec, base_dir: Path, positions: PositionIndex, *, checkout: Path | None = None
) -> dict[str, ResolvedImage]:
    """Raise one ConfigError listing every mistake found, else return every image resolved (for the plan:
    resolve_images, done once). Checks that resolve names across the file
    (engines, builders, variants, repositories) run once the checks of what they resolve have passed:
    an unknown name is reported once, where it is written, not again by each check that meets it.
    `checkout`: the repository the config came from when the tool did not choose it (see load_config);
    a file named outside it is refused before any other check looks at files."""
    if checkout is not None:
        _check_named_files_inside(spec, base_dir, checkout, positions)
    found = _Findings(positions)
    with found.each():
        _check_variant_lists(spec, (), positions)
    for variant_name, variant in (spec.variants or {}).items():
        with found.each():
            _check_build_args(variant.build_args, ("variants", variant_name, "build_args"), "", None, [], positions)
    if spec.registry is not None:
        with found.each():
            _check_prefix(spec.registry, ("registry",), positions)
    for i, host in enumerate(spec.insecure_registries):
        with found.each():
            _check_host(host, ("insecure_registries", i), positions)
    with found.each():
        _check_tag_templates(spec.tags, ("tags",), positions)
    root = repository_root(base_dir)
    for pipeline_name, pipeline in spec.pipelines.items():
        with found.each():
            _check_tag_templates(pipeline.tags, ("pipelines", pipeline_name, "tags"), positions)
        _check_pipeline(spec, pipeline_name, pipeline, base_dir, root, found)
    with found.each():
        _check_signing(spec, base_dir, positions)
    for pipeline_name, pipeline in spec.pipelines.items():
        for i, rule in enumerate(pipeline.triggers):
            with found.each():
                _check_trigger(rule, ("pipelines", pipeline_name, "triggers", i), positions)
        with found.each():
            _check_on_base_update(pipeline_name, pipeline, positions)
    for name, engine in spec.engines.items():
        with found.each():
            _check_engine(engine, ("engines", name), base_dir, positions)
    with found.each():
        _check_notify(spec, positions)
    found.problems += argument_problems(spec, positions)
    found.raise_any()
    with found.each():
        _check_unique_repositories(spec, positions)
    images = resolve_images(spec, base_dir)
    for check in (_check_builders, _check_engine_pins, _check_secrets, _check_variants):
        with found.each():
            check(spec, images, positions)
    found.raise_any()
    return images


def _check_prefix(prefix: str, where: KeyPath, positions: PositionIndex) -> None:
    try:
        validate_prefix(prefix)
    except ConfigError as exc:
        raise positions.error(where, str(exc)) from None


def _valid_prefix(prefix: str) -> bool:
    try:
        validate_prefix(prefix)
    except ConfigError:
        return False
    return True


def _check_host(host: str, where: KeyPath, positions: PositionIndex, *, at_key: bool = False) -> None:
    try:
        validate_registry_host(host)
    except ConfigError as exc:
        raise positions.error(where, str(exc), at_key=at_key) from None


def _check_builders(spec: ConfigSpec, images: dict[str, ResolvedImage], positions: PositionIndex) -> None:
    for image in images.values():
        if image.builder != "acr":
            continue
        if image.acr is None:
            raise positions.error(
                image.at,
                "builds on ACR Tasks (builder: acr, or a windows/* platform) but no 'acr:' settings are given",
                at_key=True,
            )
        platform = image.platform
        if platform is not None and platform.split("/")[0] not in ACR_OPERATING_SYSTEMS:
            raise positions.error(
                (*image.at, "platform"), f"ACR Tasks build linux/* and windows/* images, not '{platform}'"
            )


def _check_engine(engine: EngineSpec, where: KeyPath, base_dir: Path, positions: PositionIndex) -> None:
    kinds = [k for k in ("host", "context", "buildx") if getattr(engine, k) is not None]
    if len(kinds) != 1:
        found = f" (it has {' and '.join(kinds)})" if kinds else ""
        raise positions.error(
            where, f"an engine needs exactly one of 'host', 'context' or 'buildx'{found}", at_key=True
        )
    if engine.cert_path is not None:
        if not (engine.host or "").startswith("tcp://"):
            raise positions.error((*where, "cert_path"), "'cert_path' is for a tcp:// host")
        if not is_dir((base_dir / engine.cert_path).expanduser()):
            raise positions.error((*where, "cert_path"), f"'{engine.cert_path}' is not a directory")


def _check_engine_pins(spec: ConfigSpec, images: dict[str, ResolvedImage], positions: PositionIndex) -> None:
    for pipeline_name, pipeline in spec.pipelines.items():
        pinned: list[tuple[KeyPath, str | None]] = [(("pipelines", pipeline_name, "engine"), pipeline.engine)]
        pinned += [(("pipelines", pipeline_name, "images", i, "engine"), s.engine) for i, s in pipeline.images.items()]
        for where, engine_name in pinned:
            if engine_name is not None and engine_name not in spec.engines:
                known = list(spec.engines)
                hint = _suggest(engine_name, known) if known else " (no 'engines:' are declared)"
                raise positions.error(where, f"no engine named '{engine_name}'{hint}")
        for image in images.values():
            if image.pipeline == pipeline_name:
                _check_image_engine(spec, image, positions)


def _check_image_engine(spec: ConfigSpec, image: ResolvedImage, positions: PositionIndex) -> None:
    """An image's builder can build where it is pinned (else the run would fail only at build time)."""
    builder, pinned, where = image.builder, image.engine, image.at
    pinned_at: KeyPath = image.engine_at or where
    if builder == "acr" and pinned is not None:
        raise positions.error(pinned_at, f"{image.name} builds on ACR Tasks (builder: acr), not on engine '{pinned}'")
    if builder != "classic" or not spec.engines:
        return
    if pinned is not None and spec.engines[pinned].buildx is not None:
        raise positions.error(
            pinned_at,
            f"engine '{pinned}' is a buildx builder: builder: classic needs a Docker engine (host or context)",
        )
    if pinned is None and all(engine.buildx is not None for engine in spec.engines.values()):
        raise positions.error(
            where,
            "builder: classic needs a Docker engine, but every engine under 'engines:' is a buildx builder",
            at_key=True,
        )


def _check_secrets(spec: ConfigSpec, images: dict[str, ResolvedImage], positions: PositionIndex) -> None:
    for pipeline_name, pipeline in spec.pipelines.items():
        where_pipeline: KeyPath = ("pipelines", pipeline_name)
        owners: list[tuple[KeyPath, dict[str, SecretSource]]] = [(where_pipeline, pipeline.secrets)]
        owners += [(("pipelines", pipeline_name, "images", i), s.secrets) for i, s in pipeline.images.items()]
        for where, secrets in owners:
            for secret_id, source in secrets.items():
                if (source.env is None) == (source.file is None):
                    raise positions.error(
                        (*where, "secrets", secret_id), "a secret needs exactly one of 'env: VARIABLE' or 'file: PATH'"
                    )
        for image in images.values():
            if image.pipeline != pipeline_name or image.builder == "docker" or image.secrets_at is None:
                continue
            # Point at the `secrets:` that gives this image its secrets: its own, else the pipeline's.
            raise positions.error(
                image.secrets_at,
                f"build secrets need BuildKit (builder: docker), but image {image.name} builds with builder: "
                f"{image.builder}",
                at_key=True,
            )


def _check_trigger(rule: TriggerRule, where: KeyPath, positions: PositionIndex) -> None:
    if (rule.branch is None) == (rule.tag is None):
        raise positions.error(where, "a trigger needs exactly one of 'branch' or 'tag'")
    pattern = rule.branch or rule.tag or ""
    key = "branch" if rule.branch else "tag"
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError) as exc:  # 'a{99999999999}' overflows
        raise positions.error((*where, key), f"not a regular expression: {exc}") from None
    except RecursionError:  # '((((...))))' hundreds deep
        raise positions.error((*where, key), "not a regular expression: nested too deeply") from None
    if rule.release and (rule.tag is None or "version" not in compiled.groupindex):
        raise positions.error(where, "'release: true' needs a tag pattern with a (?P<version>...) group")
    _check_tag_templates(TagPolicy(extra=rule.tags), (*where, "tags"), positions, index_key=False)


def _check_on_base_update(name: str, pipeline: PipelineSpec, positions: PositionIndex) -> None:
    """A base update builds the tip of a branch: a release policy on a pipeline no branch builds would
    never apply (and says nothing where it is written)."""
    if pipeline.on_base_update.release == "none" or not pipeline.triggers:
        return
    if not any(rule.branch is not None for rule in pipeline.triggers):
        raise positions.error(
            ("pipelines", name, "on_base_update", "release"),
            f"pipeline {name} has trigger rules for tags only, so a base update (which builds a branch's tip) "
            "never builds it; add a branch rule or remove on_base_update",
        )


def _named_files(spec: ConfigSpec) -> list[tuple[KeyPath, str, str, bool]]:
    """Every file or directory the config names besides build inputs: (where, value, what, ~ expands)."""
    found: list[tuple[KeyPath, str, str, bool]] = []
    signs = [(("sign",), spec.sign), *((("pipelines", name, "sign"), p.sign) for name, p in spec.pipelines.items())]
    found += [((*where, "key"), sign.key, "signing key", False) for where, sign in signs if sign and sign.key]
    for i, rule in enumerate(spec.trust):
        found += [(("trust", i, "keys", j), key, "public key", False) for j, key in enumerate(rule.keys)]
    if spec.sigstore.trust_config is not None:
        found.append((("sigstore", "trust_config"), spec.sigstore.trust_config, "trust config", False))
    for host, registry in spec.registries.items():
        if registry.ca_file is not None:
            found.append((("registries", host, "ca_file"), registry.ca_file, "CA file", False))
    for name, engine in spec.engines.items():
        if engine.cert_path is not None:
            found.append((("engines", name, "cert_path"), engine.cert_path, "cert_path", True))
    for pipeline_name, pipeline in spec.pipelines.items():
        owners: list[tuple[KeyPath, dict[str, SecretSource]]] = [(("pipelines", pipeline_name), pipeline.secrets)]
        owners += [(("pipelines", pipeline_name, "images", i), s.secrets) for i, s in pipeline.images.items()]
        for where, secrets in owners:
            found += [
                ((*where, "secrets", secret_id, "file"), source.file, "secret file", True)
                for secret_id, source in secrets.items()
                if source.file is not None
            ]
    return found


def _check_named_files_inside(spec: ConfigSpec, base_dir: Path, checkout: Path, positions: PositionIndex) -> None:
    """A config from a checkout the tool did not choose (a pushed branch) names only files of that
    checkout: no keys, secrets or certificates of the machine that builds it. Checked before anything
    looks at them, so not even their existence is told."""
    for where, value, what, expands in _named_files(spec):
        path = base_dir / (Path(value).expanduser() if expands else Path(value))
        problem = escape_problem(
            checkout, path, value, what, "a build of a pushed commit reads files of its checkout only"
        )
        if problem:
            raise positions.error(where, problem)


def _check_file(base_dir: Path, value: str, where: KeyPath, what: str, positions: PositionIndex) -> None:
    if not is_file(base_dir / value):
        raise positions.error(where, f"{what} '{base_dir / value}' does not exist")


def _check_signing(spec: ConfigSpec, base_dir: Path, positions: PositionIndex) -> None:
    signs: list[tuple[KeyPath, SignSpec | None]] = [(("sign",), spec.sign)]
    signs += [(("pipelines", name, "sign"), p.sign) for name, p in spec.pipelines.items()]
    for where, sign in signs:
        if sign is None:
            continue
        if (sign.key is None) == (not sign.keyless):
            raise positions.error(where, "set exactly one of 'key: PATH' or 'keyless: true'")
        if sign.key is not None:
            _check_file(base_dir, sign.key, (*where, "key"), "signing key", positions)
        for i, kind in enumerate(sign.attest):
            if kind in sign.attest[:i]:
                raise positions.error((*where, "attest", i), f"'{kind}' is listed twice")
    _check_reuse(spec, positions)
    for host in spec.registries:
        _check_host(host, ("registries", host), positions, at_key=True)
    for i, rule in enumerate(spec.trust):
        if not rule.keys and not rule.identities:
            raise positions.error(("trust", i), "a trust rule needs 'keys' or 'identities'")
        for j, key in enumerate(rule.keys):
            _check_file(base_dir, key, ("trust", i, "keys", j), "public key", positions)
    if spec.sigstore.trust_config is not None:
        _check_file(base_dir, spec.sigstore.trust_config, ("sigstore", "trust_config"), "trust config", positions)


def _check_reuse(spec: ConfigSpec, positions: PositionIndex) -> None:
    """`reuse: trusted` reuses only what the pipeline's own signer signed: a pipeline that signs nothing has
    no signer to check against (docs/reuse-and-trust.md)."""
    for name, pipeline in spec.pipelines.items():
        chosen = pipeline.reuse or spec.reuse
        if chosen != "trusted" or (pipeline.sign or spec.sign) is not None:
            continue
        where: KeyPath = ("pipelines", name, "reuse") if pipeline.reuse else ("reuse",)
        raise positions.error(
            where,
            f"`reuse: trusted` needs signing, but pipeline {name} does not sign (set `sign:`, or `reuse: any` "
            "to reuse whatever an inputs- tag holds, or `reuse: never`)",
        )


def _check_unique_repositories(spec: ConfigSpec, positions: PositionIndex) -> None:
    """Two images pushing the same tags to one repository would overwrite each other."""
    seen: dict[tuple[str, str], str] = {}
    for pipeline_name, pipeline in spec.pipelines.items():
        for name, image in pipeline.images.items():
            prefix = pipeline.registry or spec.registry
            repository = image.repository or f"{prefix}/{name}"
            suffix = image.tags.suffix or pipeline.tags.suffix or spec.tags.suffix or ""
            key = (str(parse_repository(repository)), suffix)
            if key in seen:
                raise positions.error(
                    ("pipelines", pipeline_name, "images", name),
                    f"pushes to {key[0]} like {seen[key]}; give one of them another repository or a tags.suffix",
                    at_key=True,
                )
            seen[key] = f"pipelines.{pipeline_name}.images.{name}"


def _check_build_files(image: ImageSpec, img: KeyPath, base_dir: Path, root: Path, positions: PositionIndex) -> None:
    """The context and Dockerfile exist and stay inside the repository (no '..', absolute path or
    symlink out of it): a build must not send files from elsewhere on the machine."""
    context = base_dir / image.context
    problem = escape_problem(root, context, image.context, "context")
    if problem:
        raise positions.error((*img, "context"), problem)
    if not is_dir(context):
        raise positions.error((*img, "context"), f"context directory '{context}' does not exist")
    dockerfile = context / image.dockerfile
    key = "dockerfile" if "dockerfile" in image.model_fields_set else "context"
    problem = escape_problem(root, dockerfile, image.dockerfile, "Dockerfile")
    if problem:
        raise positions.error((*img, key), problem)
    if not is_file(dockerfile):
        raise positions.error((*img, key), f"Dockerfile '{dockerfile}' does not exist")
    for i, pattern in enumerate(image.paths):
        problem = glob_problem(pattern)
        if problem:
            raise positions.error((*img, "paths", i), problem)


SAMPLE_TAG_VALUES = {
    "version": "1.2.3",
    "major": "1",
    "minor": "2",
    "patch": "3",
    "git.sha": "0" * 40,
    "git.short_sha": "0" * 12,
    "git.branch": "main",
    "git.pr": "1",
}


def _check_tag_templates(policy: TagPolicy, at: KeyPath, positions: PositionIndex, index_key: bool = True) -> None:
    for i, template in enumerate(policy.extra or []):
        where = (*at, "extra", i) if index_key else (*at, i)
        try:
            unknown = unknown_names(template, set())
        except TemplateSyntaxError as exc:
            raise positions.error(where, str(exc)) from None
        if unknown:
            raise positions.error(
                where,
                f"unknown placeholder '{{{{ {unknown[0]} }}}}' in a tag "
                "(known: version, major, minor, patch, git.sha, git.short_sha, git.branch, git.pr)",
            )
        sample = render(template, SAMPLE_TAG_VALUES) + (policy.suffix or "")
        if RESERVED_TAG.match(render(template, SAMPLE_TAG_VALUES)):
            raise positions.error(
                where, f"'{template}' would name a release or floating tag; those follow the release rules"
            )
        reserved = next((p for p in RESERVED_TAG_PREFIXES if render(template, SAMPLE_TAG_VALUES).startswith(p)), None)
        if reserved is not None:
            raise positions.error(
                where,
                f"'{template}' would name a tag the run writes itself ({reserved}…: input and build tags, "
                "which later builds reuse); pick another prefix",
            )
        try:
            validate_tag(sample)
        except ConfigError as exc:
            raise positions.error(where, f"'{template}' does not make a valid tag: {exc}") from None


def _check_build_args(
    build_args: dict[str, str],
    at: KeyPath,
    pipeline_name: str,
    name: str | None,
    names: list[str],
    positions: PositionIndex,
    shared: bool = False,
) -> None:
    """Templates parse and name images of the pipeline (never `name` itself; None: no image may be named).
    `shared`: the build args are a pipeline-level variant's, which every image of the pipeline takes."""
    known = set(names)
    for arg, value in build_args.items():
        where = (*at, arg)
        try:
            unknown = unknown_names(value, known)
            refs = image_references(value)
        except TemplateSyntaxError as exc:
            raise positions.error(where, str(exc)) from None
        for ref in refs:
            if name is None:
                raise positions.error(
                    where,
                    f"'{{{{ images.{ref} }}}}': top-level variants apply to the images of every pipeline, so they "
                    "cannot name one; declare this variant under the pipeline's or the image's 'variants:'",
                )
            if ref not in names:
                raise positions.error(
                    where,
                    f"'{{{{ images.{ref} }}}}' names no image of pipeline '{pipeline_name}'" + _suggest(ref, names),
                )
            if ref == name and shared:
                raise positions.error(
                    where,
                    f"pipeline '{pipeline_name}' variants apply to each of its images, {name} too, and image "
                    f"'{name}' cannot reference its own digest; give {name} its own 'variants:' or 'platforms:'",
                )
            if ref == name:
                raise positions.error(where, f"image '{name}' cannot reference its own digest")
        if unknown:
            raise positions.error(
                where,
                f"unknown placeholder '{{{{ {unknown[0]} }}}}' "
                "(known: images.<name>, version, major, minor, patch, git.sha, git.short_sha, git.branch, git.pr)",
            )


def _check_pipeline(
    spec: ConfigSpec,
    pipeline_name: str,
    pipeline: PipelineSpec,
    base_dir: Path,
    root: Path,
    found: _Findings,
) -> None:
    """Each image on its own; the dependency graph once they all passed (a bad template or an unknown
    dependency is its images' mistake, not a cycle's)."""
    at = ("pipelines", pipeline_name)
    positions = found.positions
    before = len(found.problems)
    if pipeline.registry is not None:
        with found.each():
            _check_prefix(pipeline.registry, (*at, "registry"), positions)
    for name, image in pipeline.images.items():
        with found.each():
            _check_image(spec, pipeline_name, pipeline, name, image, base_dir, root, positions)
    with found.each():
        _check_variant_lists(pipeline, at, positions)
    names = list(pipeline.images)
    for name, image in pipeline.images.items():
        with found.each():
            _check_variant_lists(image, (*at, "images", name), positions)
            for variant in declared_variants(spec, pipeline_name, name):
                # Each variant's build args as the image's are: the pipeline's variants apply to every image.
                # (Top-level variants' build args were checked to name no image at all.)
                if variant.at[0] == "pipelines":
                    where = (*variant.at, "build_args") if variant.at[-2] == "variants" else variant.at
                    shared = variant.at[2] != "images"
                    _check_build_args(variant.spec.build_args, where, pipeline_name, name, names, positions, shared)
    if len(found.problems) > before:
        return
    cycle = find_cycle(dependencies_of(pipeline))
    if cycle:
        found.problems.append(
            positions.problem((*at, "images", cycle[0]), f"dependency cycle: {' -> '.join(cycle)}", at_key=True)
        )


def _check_image(
    spec: ConfigSpec,
    pipeline_name: str,
    pipeline: PipelineSpec,
    name: str,
    image: ImageSpec,
    base_dir: Path,
    root: Path,
    positions: PositionIndex,
) -> None:
    img = ("pipelines", pipeline_name, "images", name)
    names = list(pipeline.images)
    prefix = pipeline.registry or spec.registry
    if image.repository is not None:
        try:
            parse_repository(image.repository)
        except ConfigError as exc:
            raise positions.error((*img, "repository"), str(exc)) from None
    elif prefix is None:
        raise positions.error(img, "no repository: set 'repository' here or a top-level 'registry' prefix", at_key=True)
    elif _valid_prefix(prefix):  # else the prefix's own mistake is reported, where it is written
        try:
            parse_repository(f"{prefix}/{name}")
        except ConfigError as exc:
            raise positions.error(img, str(exc), at_key=True) from None
    _check_build_files(image, img, base_dir, root, positions)
    if image.platform is not None:
        problem = platform_problem(image.platform)
        if problem:
            raise positions.error((*img, "platform"), problem)
    for i, dep in enumerate(image.depends_on):
        if dep == name:
            raise positions.error((*img, "depends_on", i), f"image '{name}' cannot depend on itself")
        if dep not in pipeline.images:
            raise positions.error(
                (*img, "depends_on", i),
                f"unknown image '{dep}' in pipeline '{pipeline_name}'{_suggest(dep, names)}",
            )
    _check_build_args(image.build_args, (*img, "build_args"), pipeline_name, name, names, positions)
    _check_tag_templates(image.tags, (*img, "tags"), positions)


def _check_variant_lists(owner: ConfigSpec | PipelineSpec | ImageSpec, at: KeyPath, positions: PositionIndex) -> None:
    """`platforms:` and `variants:` at one level are two answers to one question; each platform is valid
    and each variant's Windows version is for a Windows platform."""
    if owner.platforms is not None and owner.variants is not None:
        raise positions.error((*at, "variants"), "set either 'platforms' or 'variants' here, not both", at_key=True)
    if isinstance(owner, ImageSpec) and owner.platform is not None:
        for key in ("platforms", "variants"):
            if getattr(owner, key) is not None:
                message = f"an image with 'platform:' builds one platform; drop 'platform' or '{key}'"
                raise positions.error((*at, key), message, at_key=True)
    for i, platform in enumerate(owner.platforms or []):
        problem = platform_problem(platform)
        if problem:
            raise positions.error((*at, "platforms", i), problem)
        if platform in (owner.platforms or [])[:i]:
            raise positions.error((*at, "platforms", i), f"'{platform}' is listed twice")
    for name, variant in (owner.variants or {}).items():
        where = (*at, "variants", name)
        problem = platform_problem(variant.platform)
        if problem:
            raise positions.error((*where, "platform"), problem)
        if variant.os_version is not None and not variant.platform.startswith("windows/"):
            message = f"'os_version' is for windows/* variants, not {variant.platform}"
            raise positions.error((*where, "os_version"), message)


def _shown(v: ResolvedVariant) -> str:
    return platform_text(v.platform, v.os_version)


def _variant_key(v: ResolvedVariant) -> tuple[str, str, str | None]:
    return (v.name, v.platform, v.os_version)


def _check_variants(spec: ConfigSpec, images: dict[str, ResolvedImage], positions: PositionIndex) -> None:
    """Every variant can be built by some configured builder, an index can tell the variants apart, and a
    dependant's variants each have a base variant to build on."""
    for pipeline_name in spec.pipelines:
        mine = {image.name: image for image in images.values() if image.pipeline == pipeline_name}
        for image_name, image in mine.items():
            variants = image.variants
            seen: dict[tuple[str, str], str] = {}
            for variant in variants:
                build = windows_build(variant.os_version or "")
                # 10.0.17763.1 and 10.0.17763.5458 run on the same hosts: one index entry cannot tell them apart.
                what = variant.platform + (f" build {build}" if build else "")
                key = (str(parse_platform(variant.platform)), build)  # linux/arm64 is linux/arm64/v8
                if key in seen:
                    raise positions.error(
                        variant.at,
                        f"variants '{seen[key]}' and '{variant.name}' of {image_name} are both {what}: "
                        "an image index cannot tell them apart",
                        at_key=variant.at[-2] == "variants",
                    )
                seen[key] = variant.name
                _check_variant_builder(spec, image, variant, positions)
            for dep in image.depends_on:
                base = [_variant_key(v) for v in mine[dep].variants]
                declared = mine[dep].platform
                if not base and declared is not None:
                    # A base of one declared platform: a variant of another would build FROM the wrong image.
                    base = [(dep, declared, None)]
                if not base or not variants:
                    continue
                for variant in variants:
                    match = matching_variant(base, _variant_key(variant))
                    if match is None:
                        known = ", ".join(f"{n} ({platform_text(p, v)})" for n, p, v in base)
                        raise positions.error(
                            variant.at,
                            f"variant '{variant.name}' of {image_name} ({_shown(variant)}) has no matching "
                            f"variant in {dep}, which it builds on (one of the same platform and Windows "
                            f"build; {dep} has {known})",
                            at_key=variant.at[-2] == "variants",
                        )


def _check_variant_builder(
    spec: ConfigSpec, image: ResolvedImage, variant: ResolvedVariant, positions: PositionIndex
) -> None:
    """A variant that no configured builder can build is refused now, naming the variant."""
    image_name = image.name
    builder, chosen = variant.builder, variant.chosen_builder
    platform, os_version = variant.platform, variant.os_version
    system = platform.split("/")[0]
    what = f"variant '{variant.name}' of {image_name} ({platform_text(platform, os_version)})"
    at_key = variant.at[-2] == "variants"
    engine_at: KeyPath = (*variant.at, "engine")
    wanted = f"'os: {system}'" + (f" and 'os_version: {os_version}'" if os_version else "")
    if variant.own_engine is not None:
        # The variant's own engine is the user's choice: say what is wrong with it before any default
        # (a Windows variant defaults to ACR Tasks only when no engine is named).
        name = variant.own_engine
        if name not in spec.engines:
            known = list(spec.engines)
            hint = _suggest(name, known) if known else " (no 'engines:' are declared)"
            raise positions.error(engine_at, f"no engine named '{name}'{hint}")
        if builder == "acr" and chosen == "acr":
            raise positions.error(engine_at, f"{what} builds on ACR Tasks (builder: acr), not on engine '{name}'")
        engine = spec.engines[name]
        if not engine_builds(engine.os, engine.os_version, platform, os_version):
            builds = engine.os + (f" {engine.os_version}" if engine.os == "windows" and engine.os_version else "")
            acr = image.acr is not None
            other = ""
            if system == "windows":
                other = ", or drop 'engine' to build it on ACR Tasks" + ("" if acr else " with 'acr:' settings")
            raise positions.error(
                engine_at,
                f"{what} is pinned to engine '{name}', which builds {builds} images "
                f"(pin it to an engine declared with {wanted}{other})",
            )
        return
    if builder == "acr":
        if image.acr is None:
            raise positions.error(
                variant.at,
                f"{what} builds on ACR Tasks (builder: acr, or a Windows platform with no Windows engine) "
                f"but no 'acr:' settings are given; add 'acr:' or declare an engine with {wanted}",
                at_key=at_key,
            )
        if system not in ACR_OPERATING_SYSTEMS:
            where: KeyPath = (*variant.at, "platform") if at_key else variant.at
            raise positions.error(where, f"{what}: ACR Tasks build linux/* and windows/* images, not {system}/*")
        return
    pinned = image.engine
    if spec.engines:
        candidates = {pinned: spec.engines[pinned]} if pinned in spec.engines else spec.engines
        able = [n for n, e in candidates.items() if engine_builds(e.os, e.os_version, platform, os_version)]
    else:
        # The implicit engine builds Linux, or Windows when `windows_engine: true` says it is one.
        able = ["default"] if (system == "windows") == spec.windows_engine else []
    if not able:
        where_built = (
            f"engine '{pinned}' (the image's) builds {spec.engines[pinned].os} images"
            if pinned in spec.engines
            else f"no engine builds {system}" + (f" {os_version}" if os_version else "") + " images"
        )
        other = ", or build it on ACR Tasks with builder: acr" if system == "windows" else ""
        raise positions.error(
            variant.at,
            f"{what} cannot be built with builder: {builder}: {where_built} (declare an engine with {wanted}{other})",
            at_key=at_key,
        )


def _check_notify(spec: ConfigSpec, positions: PositionIndex) -> None:
    blocks: list[tuple[KeyPath, NotifySpec | None]] = [(("notify",), spec.notify)]
    blocks += [(("pipelines", name, "notify"), p.notify) for name, p in spec.pipelines.items()]
    for where, block in blocks:
        for i, target in enumerate(block.targets if block else []):
            at: KeyPath = (*where, "targets", i)
            if (target.url is None) == (target.url_env is None):
                raise positions.error(at, "a notify target needs exactly one of 'url' or 'url_env'", at_key=True)
            if target.kind == "slack" and target.secret_env is not None:
                raise positions.error(
                    (*at, "secret_env"),
                    "Slack incoming webhooks are not signed (their URL is the secret): drop secret_env, give url_env",
                )
            if target.url is not None:
                problem = notify_url_problem(target.url)
                if problem:
                    raise positions.error((*at, "url"), problem)


def notify_url_problem(url: str, *, from_environment: bool = False) -> str | None:
    """Why `url` cannot be a notify target's URL (None: it can): from pipelines.yaml, or (`from_environment`)
    a url_env's value, which may carry credentials. Never shows the URL: a Slack webhook's path is its secret."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return "not a URL (give http://HOST/... or https://HOST/...)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = f"'{parts.scheme}://'" if parts.scheme else "a URL without a scheme"
        return f"a notify URL is http:// or https:// with a host, not {scheme}"
    if not from_environment and (parts.username is not None or parts.password is not None):
        return "credentials in a notify URL would be committed with this file: give the URL in url_env instead"
    return None
