"""What the schema leaves to resolution beyond the merge table of `config.resolved`: an image's variant list,
the default builder, its dependencies (explicit and implied by `{{ images.X }}`), variant matching. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.positions import KeyPath
from pipeline.config.schema import ConfigSpec, ImageSpec, PipelineSpec, VariantSpec
from pipeline.config.templates import image_references
from pipeline.registry.platforms import parse_platform, same_windows_build


def default_builder(spec: ConfigSpec, chosen: str | None, platform: str | None, os_version: str | None) -> str:
    """The builder a variant, image or pipeline names (`chosen`), else: a Windows platform goes to ACR Tasks
    unless an engine builds its Windows build; then the top-level default."""
    if chosen:
        return chosen
    if (platform or "").startswith("windows/") and not _engine_for_windows(spec, os_version):
        return "acr"
    return spec.builder


def dependencies_of(pipeline: PipelineSpec) -> dict[str, tuple[str, ...]]:
    """Each image's direct dependencies, explicit and implied by `{{ images.X }}`, in a stable order."""
    graph: dict[str, tuple[str, ...]] = {}
    for name, image in pipeline.images.items():
        deps = list(image.depends_on)
        for value in image.build_args.values():
            deps.extend(image_references(value))
        # Variants' build args too: the image's own, else the pipeline's it takes (top-level variants
        # may not name images; the checks say so).
        own = image.variants is not None or image.platforms is not None or image.platform is not None
        variants = image.variants if own else pipeline.variants
        for variant in (variants or {}).values():
            for value in variant.build_args.values():
                deps.extend(image_references(value))
        graph[name] = tuple(dict.fromkeys(d for d in deps if d in pipeline.images))
    return graph


@dataclass(frozen=True)
class DeclaredVariant:
    """One variant of an image as the nearest `variants:`/`platforms:` declares it, and where."""

    name: str
    spec: VariantSpec
    at: KeyPath


def platform_variant_name(platform: str) -> str:
    """The variant name `platforms:` gives a platform: linux/arm64/v8 -> linux-arm64-v8."""
    return platform.replace("/", "-")


def declared_variants(spec: ConfigSpec, pipeline: str, image: str) -> list[DeclaredVariant]:
    """The image's variants: its own `variants:`/`platforms:`, else its pipeline's, else the top level's.
    An image's own `platform:` (or an empty list) means one platform and no index: returns []."""
    image_spec = spec.pipelines[pipeline].images[image]
    if image_spec.platform is not None:
        return []
    levels: list[tuple[ImageSpec | PipelineSpec | ConfigSpec, KeyPath]] = [
        (image_spec, ("pipelines", pipeline, "images", image)),
        (spec.pipelines[pipeline], ("pipelines", pipeline)),
        (spec, ()),
    ]
    for owner, at in levels:
        if owner.variants is not None:
            return [DeclaredVariant(name, v, (*at, "variants", name)) for name, v in owner.variants.items()]
        if owner.platforms is not None:
            return [
                DeclaredVariant(platform_variant_name(p), VariantSpec(platform=p), (*at, "platforms", i))
                for i, p in enumerate(owner.platforms)
            ]
    return []


def _engine_for_windows(spec: ConfigSpec, os_version: str | None) -> bool:
    """Some engine builds Windows images of this build (`windows_engine: true`: the implicit one, any)."""
    if spec.windows_engine:
        return True
    return any(
        engine.os == "windows" and engine_builds(engine.os, engine.os_version, "windows/amd64", os_version)
        for engine in spec.engines.values()
    )


def engine_builds(engine_os: str | None, engine_version: str | None, platform: str, os_version: str | None) -> bool:
    """Whether an engine of this OS (None: not declared, take what it is asked) builds `platform`
    (and, for Windows, `os_version`). A Linux engine builds every linux/* platform (other
    architectures need no emulation unless a RUN step runs; BuildKit says so when it fails)."""
    if engine_os is None:
        return True
    if platform.split("/")[0] != engine_os:
        return False
    if engine_os == "windows" and engine_version and os_version:
        return same_windows_build(engine_version, os_version)
    return True


# A variant as matching sees it: (name, platform, os_version).
VariantKey = tuple[str, str, str | None]


def same_platform(a: str, b: str) -> bool:
    """Two spellings of one platform as containerd matches them (linux/arm64 is linux/arm64/v8)."""
    return parse_platform(a) == parse_platform(b)


def matching_variant(base: list[VariantKey], wanted: VariantKey) -> str | None:
    """The base's variant a dependant's variant builds on: of the same platform and Windows build (a Windows
    ltsc2019 app on the Windows ltsc2019 base), the one of the same name if there are several. None: none;
    a variant of the same name but another platform or Windows build is no match."""
    name, platform, os_version = wanted
    candidates = [c for c in base if same_platform(c[1], platform) and same_windows_build(c[2] or "", os_version or "")]
    named = [c for c in candidates if c[0] == name]
    return (named or candidates or [("", "", None)])[0][0] or None
