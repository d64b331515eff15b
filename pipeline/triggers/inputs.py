"""What `pipeline changed` needs of each planned image (ImageInputs), made from the checked config's
plan, or read back from the rows its cache keeps (triggers/changed_cache.py). Imports no config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.dockerfile.ignore import reads_own_ignore_file

if TYPE_CHECKING:
    from pipeline.plan import Plan


@dataclass(frozen=True)
class VariantShown:
    """What `changed` says of one of an image's variants (the plan's Variant without its build args)."""

    name: str
    platform: str
    os_version: str | None
    builder: str
    engine: str | None


@dataclass(frozen=True)
class ImageInputs:
    """What `changed` needs of a planned image: where its inputs are, what it builds on, its variants.
    Made from the checked config and its plan, or read back from the cache of them."""

    key: str
    context: Path  # resolved
    dockerfile: Path  # as planned: the resolved context joined with the Dockerfile as written
    paths: tuple[str, ...]  # extra `paths:` globs, relative to the pipelines file
    depends_on: tuple[str, ...]  # keys of images in the same plan
    variants: tuple[VariantShown, ...] = ()
    # BuildKit reads `<Dockerfile>.dockerignore` first (dockerfile.ignore); the classic builder and ACR don't.
    buildkit: bool = False


def image_inputs(plan: Plan) -> list[ImageInputs]:
    """Each planned image's inputs, in the plan's (build) order."""
    return [
        ImageInputs(
            key=key,
            context=image.context,
            dockerfile=image.dockerfile,
            paths=image.paths,
            depends_on=image.depends_on,
            variants=tuple(VariantShown(v.name, v.platform, v.os_version, v.builder, v.engine) for v in image.variants),
            buildkit=reads_own_ignore_file(image.builder),
        )
        for key, image in plan.images.items()
    ]


def row_of(image: ImageInputs) -> dict[str, Any]:
    return {
        "key": image.key,
        "context": str(image.context),
        "dockerfile": str(image.dockerfile),
        "paths": list(image.paths),
        "depends_on": list(image.depends_on),
        "variants": [[v.name, v.platform, v.os_version, v.builder, v.engine] for v in image.variants],
        "buildkit": image.buildkit,
    }


def inputs_from_rows(rows: list[Any] | None) -> list[ImageInputs] | None:
    """The cached rows back as inputs; None (load the config) when any is not what row_of writes."""
    if rows is None:
        return None
    try:
        return [_image_of(row) for row in rows]
    except (KeyError, TypeError, ValueError):
        return None


def _text(value: object, *, optional: bool = False) -> Any:
    if isinstance(value, str) or (optional and value is None):
        return value
    raise TypeError(f"not text: {value!r}")


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"not a list: {value!r}")
    return tuple(_text(item) for item in value)


def _image_of(row: dict[str, Any]) -> ImageInputs:
    variants = []
    for variant in row["variants"]:
        if not isinstance(variant, list) or len(variant) != 5:
            raise TypeError(f"not a variant: {variant!r}")
        name, platform, os_version, builder, engine = variant
        variants.append(
            VariantShown(
                _text(name),
                _text(platform),
                _text(os_version, optional=True),
                _text(builder),
                _text(engine, optional=True),
            )
        )
    return ImageInputs(
        key=_text(row["key"]),
        context=Path(_text(row["context"])),
        dockerfile=Path(_text(row["dockerfile"])),
        paths=_texts(row["paths"]),
        depends_on=_texts(row["depends_on"]),
        variants=tuple(variants),
        buildkit=_flag(row["buildkit"]),
    )


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"not a flag: {value!r}")
