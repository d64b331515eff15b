"""The pieces of one image build that hold no state: its build args (dependencies by digest), labels,
layer-cache sources, the platform check of what was pushed, and a reused index's variants."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pipeline.cache.inputs import variant_references
from pipeline.cache.lastbuild import last_build
from pipeline.cache.predict import child_lookup
from pipeline.cache.scope import Vouch
from pipeline.errors import BuildError, PipelineError, RegistryError, UsageError
from pipeline.plan import (
    CREATED_LABEL,
    REVISION_LABEL,
    SOURCE_LABEL,
    TITLE_LABEL,
    VERSION_LABEL,
    Plan,
    PlannedImage,
    base_variant,
    render_build_args,
)
from pipeline.registry.client import image_descriptors
from pipeline.registry.platforms import check_platform, platform_text
from pipeline.registry.protocol import Registry
from pipeline.registry.reference import ImageRef
from pipeline.run.results import Emit, ImageOutcome, ImageResult, Status


def shown_platform(image: PlannedImage) -> str:
    return platform_text(image.platform or "", image.os_version)


def of(image: PlannedImage) -> str:
    """A progress line's prefix naming the variant it is about (nothing for a whole image)."""
    return f"[{image.variant}] " if image.variant else ""


def build_args(
    plan: Plan, registry: Registry, outcomes: Mapping[str, ImageOutcome], image: PlannedImage, push: bool
) -> dict[str, str]:
    """Build args with `{{ images.X }}` as X's pushed digest; a variant builds on X's child of its own
    platform and Windows build (a Windows ltsc2019 app on the Windows ltsc2019 base), not X's index."""
    if image.variant is not None and push:
        built = {dep: outcomes[dep].digest for dep in image.depends_on}
        return render_build_args(plan, image, variant_references(plan, image, built, child_lookup(registry)))
    references = {}
    for dep_key in image.depends_on:
        reference = outcomes[dep_key].reference
        planned = plan.images[dep_key]
        if reference is not None:
            references[dep_key] = reference
            continue
        # Without a push each variant is only a local image: `<tag>-<variant>`; there is no index.
        matching = base_variant(planned, image)
        if planned.variants and matching is None:
            raise UsageError(
                f"{image.label}: builds on {dep_key}, which has variants; without a push there is no "
                f"image index of them to build on (give {image.name} the same variants, or push)"
            )
        tag = f"{planned.tags.primary}-{matching.name}" if matching is not None else planned.tags.primary
        references[dep_key] = str(ImageRef(planned.repository, tag=tag))
    return render_build_args(plan, image, references)


def labels(plan: Plan, image: PlannedImage) -> dict[str, str]:
    ctx = plan.context
    # `created` is the commit's time, not the wall clock: the same commit and version then build
    # the same image (layer cache hit, same digest), so re-running a release is a no-op.
    created = ctx.created or datetime.now(UTC)
    found = {
        TITLE_LABEL: image.name,
        CREATED_LABEL: created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        VERSION_LABEL: ctx.template_values()["version"],
    }
    if ctx.git_sha:
        found[REVISION_LABEL] = ctx.git_sha
    if ctx.source_url:
        found[SOURCE_LABEL] = ctx.source_url
    found.update(image.labels)
    return found


def cache_sources(
    plan: Plan, registry: Registry, vouch: Vouch | None, image: PlannedImage, build_tag: str, emit: Emit
) -> tuple[str, ...]:
    """Images whose inline layer cache an engine that never built this image may reuse: this
    build's own tag (the same commit built elsewhere before), the last build on this line of
    history (a new commit: usually most layers are unchanged) and the newest release (latest). None
    under `reuse: never`: no earlier image is used, not even for its layer cache. (Only with a push
    and the input cache on.)"""
    if image.reuse == "never":
        return ()
    refs = [image.repository.with_tag(build_tag)]
    try:
        earlier = last_build(registry, image, list(plan.context.earlier_commits))
    except RegistryError:
        earlier = None  # only a cache hint: the build itself will meet a registry that is really down
    if earlier is not None:
        refs.append(image.repository.with_tag(earlier.tag))
    refs.append(image.repository.with_tag(f"latest{image.tags.suffix}"))
    if image.reuse != "trusted":
        return tuple(dict.fromkeys(str(ref) for ref in refs))
    return _trusted_sources(registry, vouch, image, list(dict.fromkeys(refs)), emit)


def _trusted_sources(
    registry: Registry, vouch: Vouch | None, image: PlannedImage, refs: list[ImageRef], emit: Emit
) -> tuple[str, ...]:
    """A `reuse: trusted` pipeline's cache sources: only those signed by its signer, by digest (a tag
    may move between the check and the build). An image's inline cache maps cache keys to its layers,
    so a planted one would hand its layers to our build steps."""
    kept: list[str] = []
    for ref in refs:
        try:
            digest = registry.resolve_digest(ref)
        except RegistryError:
            digest = None  # only a cache hint
        if digest is None:
            continue
        problem = vouch(image, digest, None) if vouch is not None else f"{digest} cannot be verified"
        if problem is None:
            kept.append(f"{ref.repository}@{digest}")
        else:
            emit(image.key, "cache", f"{of(image)}cache source {ref} dropped: {problem}")
    return tuple(dict.fromkeys(kept))


def check_pushed_platform(registry: Registry, image: PlannedImage, digest: str) -> None:
    """Fail closed, whatever the builder: an image of another platform than asked for (an engine
    ignoring --platform, a remote runner on another Windows version) is never published as it."""
    manifest = registry.manifest_by_digest(image.repository, digest)
    if manifest.is_index:
        problem: str | None = "it is an image index, not one image"
    else:
        config = registry.image_config(image.repository, manifest)
        problem = check_platform(config, image.platform or "", image.os_version)
    if problem is not None:
        raise BuildError(
            f"{image.label}: the build pushed {image.repository}@{digest} for {shown_platform(image)}, but "
            f"{problem}; not published as that variant"
        )


def variants_of_index(registry: Registry, image: PlannedImage, row: ImageResult, digest: str) -> None:
    """A reused index: each declared variant's child digest, matched by platform (for dependants'
    variants and the report). An index that lacks a declared variant is not this image."""
    if not image.variants:
        return
    index = registry.manifest_by_digest(image.repository, digest)
    children = [(str(d["digest"]), d.get("platform") or {}) for d in image_descriptors(index.json())]
    for variant in image.variants:
        view = image.variant_view(variant)
        # A descriptor's `platform` has the config's keys (os, architecture, variant, os.version).
        found = next(
            (d for d, platform in children if check_platform(platform, variant.platform, variant.os_version) is None),
            None,
        )
        if found is None:
            raise PipelineError(
                f"{image.key}: {image.repository}@{digest} has no {shown_platform(view)} image for variant "
                f"'{variant.name}'"
            )
        child = ImageResult(key=view.label, repository=str(image.repository), platform=shown_platform(view))
        child.digest, child.status, child.cached = found, Status.SUCCEEDED, True
        row.variants[variant.name] = child
