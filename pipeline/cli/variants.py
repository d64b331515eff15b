"""How commands show an image's variants: one row per variant for --json, short text for people. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.common.fields import fields_of

if TYPE_CHECKING:
    from pipeline.plan import PlannedImage


class ShownVariant(Protocol):
    """What rows and names show of a variant: the plan's Variant, or `changed`'s cached VariantShown."""

    @property
    def name(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def os_version(self) -> str | None: ...
    @property
    def builder(self) -> str: ...
    @property
    def engine(self) -> str | None: ...


def variant_row(variant: ShownVariant) -> dict[str, Any]:
    """What --json says of a variant (commands add their own keys: build args, tags, inputs)."""
    return fields_of(variant, "name", "platform", "os_version", "builder", "engine")


def variant_names(image: PlannedImage) -> str:
    """`[linux-amd64, linux-arm64, ltsc2019]`; empty for an image without variants."""
    return names_of(image.variants)


def names_of(variants: Sequence[ShownVariant]) -> str:
    return f"[{', '.join(v.name for v in variants)}]" if variants else ""


def platform_text(row: Mapping[str, Any]) -> str:
    """`windows/amd64 10.0.17763`, or the platform alone."""
    from pipeline.registry.platforms import platform_text as shown  # not for `changed`, in commit hooks

    return shown(str(row["platform"]), row.get("os_version"))


def variant_lines_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One aligned line per variant row: name, platform (and Windows version), builder, engine."""
    width = max((len(str(r["name"])) for r in rows), default=0)
    platform_width = max((len(platform_text(r)) for r in rows), default=0)
    lines = []
    for row in rows:
        where = f" on engine {row['engine']}" if row.get("engine") else ""
        lines.append(f"{row['name']:<{width}}  {platform_text(row):<{platform_width}}  {row['builder']}{where}")
    return lines
