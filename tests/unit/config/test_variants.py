"""Variant configs the checks must accept, and what they resolve to (the refusals are corpus files
under bad_configs/variants-*.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.config.resolve import dependencies_of
from pipeline.config.resolved import resolve_images
from pipeline.errors import ConfigError
from tests.helpers import image_entry, shop_config, write_project

IMAGES = {"base": "FROM scratch\n", "app": "FROM scratch\n"}


TWO_PLATFORMS = image_entry("base", "platforms: [linux/amd64, linux/arm64]")


def load(root: Path, config: str) -> None:
    load_config(write_project(root, config, IMAGES))


def test_pipeline_variants_naming_an_image_it_overrides_make_no_cycle(tmp_path: Path) -> None:
    """base has its own platforms, so the pipeline's variants (which name base) are not base's: no
    self-reference, no cycle; app still depends on base through them."""
    config = write_project(
        tmp_path,
        """\
        registry: r.example/x
        pipelines:
          shop:
            variants:
              amd64: {platform: linux/amd64, build_args: {BASE: "{{ images.base }}"}}
            images:
              base: {context: images/base, platforms: [linux/amd64]}
              app: {context: images/app}
        """,
        IMAGES,
    )
    spec = load_config(config).spec
    assert dependencies_of(spec.pipelines["shop"]) == {"base": (), "app": ("base",)}


def test_windows_variant_on_an_engine_of_its_build_needs_no_acr(tmp_path: Path) -> None:
    # 10.0.17763.5458 is a patch of 10.0.17763: process isolation runs it on that host.
    load(
        tmp_path,
        """\
        registry: r.example/x
        engines:
          linux: {host: unix:///var/run/docker.sock}
          ltsc2019: {host: tcp://win.example:2376, os: windows, os_version: 10.0.17763}
        pipelines:
          shop:
            variants:
              amd64: {platform: linux/amd64}
              ltsc2019: {platform: windows/amd64, os_version: 10.0.17763.5458}
            images:
              base: {context: images/base}
        """,
    )


def test_windows_variants_on_acr_with_settings(tmp_path: Path) -> None:
    load(
        tmp_path,
        """\
        registry: r.example/x
        acr: {registry: example, resource_group: rg, subscription: sub}
        pipelines:
          shop:
            variants:
              amd64: {platform: linux/amd64}
              ltsc2019: {platform: windows/amd64, os_version: 10.0.17763}
              ltsc2022: {platform: windows/amd64, os_version: 10.0.20348}
            images:
              base: {context: images/base}
              app: {context: images/app, build_args: {BASE: "{{ images.base }}"}}
        """,
    )


def test_a_dependant_variant_matches_its_base_by_platform_when_names_differ(tmp_path: Path) -> None:
    app = image_entry(
        "app", "depends_on: [base]", "variants: {x64: {platform: linux/amd64}, arm: {platform: linux/arm64}}"
    )
    load(tmp_path, shop_config("r.example/x", {"base": TWO_PLATFORMS, "app": app}, network=None))


def test_a_dependant_without_variants_builds_on_the_whole_base(tmp_path: Path) -> None:
    app = image_entry("app", "depends_on: [base]", "platform: linux/amd64")
    load(tmp_path, shop_config("r.example/x", {"base": TWO_PLATFORMS, "app": app}, network=None))


ARM = "variants: {a: {platform: linux/arm64}}"


@pytest.mark.parametrize(
    ("top", "pipeline", "image", "expected"),
    [
        ("platforms: [linux/amd64]", "", "", ["linux-amd64"]),
        ("platforms: [linux/amd64]", "platforms: [linux/arm64/v8]", "", ["linux-arm64-v8"]),
        ("platforms: [linux/amd64]", ARM, "", ["a"]),
        ("platforms: [linux/amd64]", ARM, "platforms: [linux/s390x]", ["linux-s390x"]),
        ("platforms: [linux/amd64]", ARM, "platform: linux/amd64", []),
        ("platforms: [linux/amd64]", "", "platforms: []", []),
        ("", "", "", []),
    ],
)
def test_nearest_variants_win(tmp_path: Path, top: str, pipeline: str, image: str, expected: list[str]) -> None:
    config = write_project(
        tmp_path,
        f"registry: r.example/x\n{top}\npipelines:\n  shop:\n    {pipeline}\n    images:\n"
        f"      base:\n        context: images/base\n        {image}\n",
        IMAGES,
    )
    loaded = load_config(config)
    assert [v.name for v in resolve_images(loaded.spec, loaded.base_dir)["shop/base"].variants] == expected


def test_the_variant_error_names_the_image_that_takes_it(tmp_path: Path) -> None:
    """A pipeline-level variant is checked for each image; the error says which image could not build it."""
    with pytest.raises(ConfigError, match=r"variant 'ltsc2019' of base \(windows/amd64 10\.0\.17763\) builds on ACR"):
        load(
            tmp_path,
            """\
            registry: r.example/x
            pipelines:
              shop:
                variants:
                  ltsc2019: {platform: windows/amd64, os_version: 10.0.17763}
                images:
                  base: {context: images/base}
            """,
        )
