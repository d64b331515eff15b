"""Variants as the plan resolves them: nearest level wins, build args and builders, per-variant tags,
and which base variant a dependant's variant builds on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import semver
import yaml

from pipeline.config.schema import ConfigSpec
from pipeline.plan import Plan, RunContext, Variant, base_variant, make_plan

ACR = "acr: {registry: example, resource_group: rg, subscription: sub}"


def plan_of(root: Path, config: str, context: RunContext | None = None) -> Plan:
    spec = ConfigSpec.model_validate(yaml.safe_load(textwrap.dedent(config)))
    return make_plan(spec, root, [], context or RunContext())


MATRIX = f"""\
registry: r.example/x
{ACR}
platforms: [linux/amd64]
pipelines:
  shop:
    variants:
      linux-amd64: {{platform: linux/amd64}}
      linux-arm64: {{platform: linux/arm64, build_args: {{ARCH: arm64}}}}
      ltsc2019:
        platform: windows/amd64
        os_version: 10.0.17763
        build_args: {{BASE_TAG: ltsc2019, ARCH: amd64}}
    images:
      base: {{context: base, build_args: {{ARCH: amd64, BASE_TAG: bookworm}}}}
      app: {{context: app, build_args: {{BASE: "{{{{ images.base }}}}"}}}}
      tool: {{context: tool, platform: linux/amd64}}
  other:
    images:
      lone: {{context: lone}}
"""


def test_nearest_level_gives_the_variants(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MATRIX)
    names = {key: [v.name for v in image.variants] for key, image in plan.images.items()}
    assert names == {
        "shop/base": ["linux-amd64", "linux-arm64", "ltsc2019"],
        "shop/app": ["linux-amd64", "linux-arm64", "ltsc2019"],
        "shop/tool": [],  # an image's own platform: one platform, no index
        "other/lone": ["linux-amd64"],  # the top level's platforms, named os-arch
    }


def test_build_args_are_the_images_with_the_variants_over_them(tmp_path: Path) -> None:
    base = plan_of(tmp_path, MATRIX).images["shop/base"]
    args = {v.name: dict(v.build_args) for v in base.variants}
    assert args == {
        "linux-amd64": {"ARCH": "amd64", "BASE_TAG": "bookworm"},
        "linux-arm64": {"ARCH": "arm64", "BASE_TAG": "bookworm"},
        "ltsc2019": {"ARCH": "amd64", "BASE_TAG": "ltsc2019"},
    }
    windows = base.variant_view(base.variants[2])
    assert (windows.platform, windows.os_version, windows.variant, windows.label) == (
        "windows/amd64",
        "10.0.17763",
        "ltsc2019",
        "shop/base[ltsc2019]",
    )
    assert dict(windows.build_args) == {"ARCH": "amd64", "BASE_TAG": "ltsc2019"}
    assert windows.variants == ()


def test_windows_variants_default_to_acr_unless_an_engine_builds_windows(tmp_path: Path) -> None:
    builders = {v.name: v.builder for v in plan_of(tmp_path, MATRIX).images["shop/base"].variants}
    assert builders == {"linux-amd64": "docker", "linux-arm64": "docker", "ltsc2019": "acr"}
    with_engine = MATRIX.replace(
        f"{ACR}\n",
        "engines:\n  linux: {host: unix:///var/run/docker.sock}\n"
        "  win: {host: tcp://win.example:2376, os: windows, os_version: 10.0.17763}\n",
    )
    builders = {v.name: v.builder for v in plan_of(tmp_path, with_engine).images["shop/base"].variants}
    assert builders == {"linux-amd64": "docker", "linux-arm64": "docker", "ltsc2019": "docker"}


def test_a_variants_builder_and_engine_win_over_the_images(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        f"""\
        registry: r.example/x
        {ACR}
        engines:
          local: {{host: unix:///var/run/docker.sock}}
          pi: {{host: ssh://pi.example}}
        pipelines:
          shop:
            images:
              base:
                context: base
                builder: classic
                engine: local
                variants:
                  amd64: {{platform: linux/amd64}}
                  arm64: {{platform: linux/arm64, builder: docker, engine: pi}}
                  arm64-acr: {{platform: linux/arm64/v8, builder: acr}}
        """,
    )
    found = {v.name: (v.builder, v.engine) for v in plan.images["shop/base"].variants}
    assert found == {
        "amd64": ("classic", "local"),
        "arm64": ("docker", "pi"),
        "arm64-acr": ("acr", None),
    }  # ACR runs on no engine


def test_variant_tags_put_the_variant_name_after_the_suffix(tmp_path: Path) -> None:
    context = RunContext(version=semver.Version.parse("2.1.5"), git_sha="a" * 40)
    images = "    images:\n      base:"
    config = MATRIX.replace(images, "    tags: {variants: true, suffix: -x}\n" + images)
    plan = plan_of(tmp_path, config, context)
    base = plan.images["shop/base"]
    assert base.tags.release == "2.1.5-x"  # the index's own tags are unchanged
    assert set(base.variant_tags) == {"linux-amd64", "linux-arm64", "ltsc2019"}
    assert list(base.variant_tags["ltsc2019"].all) == [
        "sha-" + "a" * 12 + "-x-ltsc2019",
        "2.1.5-x-ltsc2019",
        "2.1-x-ltsc2019",
        "2-x-ltsc2019",
        "latest-x-ltsc2019",
    ]
    assert plan.images["other/lone"].variant_tags == {}  # variants: true is the shop pipeline's


def test_no_variant_tags_unless_asked(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MATRIX, RunContext(version=semver.Version.parse("2.1.5")))
    assert all(image.variant_tags == {} for image in plan.images.values())


def test_base_variant_by_name(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MATRIX)
    base, app = plan.images["shop/base"], plan.images["shop/app"]
    for variant in app.variants:
        found = base_variant(base, app.variant_view(variant))
        assert found is not None and found.name == variant.name


def test_base_variant_by_platform_and_windows_build_when_names_differ() -> None:
    base = plan_of(Path("/nonexistent"), MATRIX).images["shop/base"]
    app = plan_of(Path("/nonexistent"), MATRIX).images["shop/app"]
    renamed = [
        Variant("win-2019", "windows/amd64", "10.0.17763.5458", {}, "acr", None),  # a patch of the same build
        Variant("arm", "linux/arm64", None, {}, "docker", None),
        Variant("win-2022", "windows/amd64", "10.0.20348", {}, "acr", None),
    ]
    found = {v.name: base_variant(base, app.variant_view(v)) for v in renamed}
    assert {k: (v.name if v else None) for k, v in found.items()} == {
        "win-2019": "ltsc2019",
        "arm": "linux-arm64",
        "win-2022": None,
    }


def test_no_base_variant_when_either_side_has_none(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MATRIX)
    base, app, tool = plan.images["shop/base"], plan.images["shop/app"], plan.images["shop/tool"]
    assert base_variant(base, app) is None  # the whole image, not a variant's view
    assert base_variant(tool, app.variant_view(app.variants[0])) is None  # the base has one platform
