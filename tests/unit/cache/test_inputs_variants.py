"""An image with variants: its input digest is over its variants' (index_inputs), so one variant's
change changes the image's and no other variant's."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.cache.inputs import GitBlobs, InputDigest, image_inputs, index_inputs
from pipeline.config.schema import ConfigSpec
from pipeline.plan import RunContext, make_plan
from tests.helpers import write_project

CONFIG = """\
registry: r.example/x
acr: {registry: example, resource_group: rg, subscription: sub}
pipelines:
  p:
    images:
      app:
        context: images/app
        build_args: {GREETING: hello}
        variants:
          amd64: {platform: linux/amd64}
          arm64: {platform: linux/arm64, build_args: {ARCH: arm64}}
          ltsc2019: {platform: windows/amd64, os_version: 10.0.17763}
"""


def inputs_of(root: Path, config: str) -> InputDigest:
    write_project(root, config, {"app": "FROM scratch\nCOPY . /app\n"})
    spec = ConfigSpec.model_validate(yaml.safe_load(config))
    plan = make_plan(spec, root, [], RunContext())
    image = plan.images["p/app"]
    return image_inputs(plan, image, dict(image.build_args), {}, GitBlobs.read(root))


def test_the_image_digest_is_over_every_variants(tmp_path: Path) -> None:
    inputs = inputs_of(tmp_path, CONFIG)
    assert set(inputs.variants) == {"amd64", "arm64", "ltsc2019"}
    assert inputs.digest == index_inputs(inputs.variants).digest
    assert len({v.digest for v in inputs.variants.values()}) == 3  # platforms differ, so do digests


def test_one_variants_change_changes_the_image_and_that_variant_only(tmp_path: Path) -> None:
    before = inputs_of(tmp_path, CONFIG)
    after = inputs_of(tmp_path, CONFIG.replace("{ARCH: arm64}", "{ARCH: aarch64}"))
    assert after.digest != before.digest
    assert after.variants["arm64"].digest != before.variants["arm64"].digest
    for name in ("amd64", "ltsc2019"):
        assert after.variants[name].digest == before.variants[name].digest
    windows = inputs_of(tmp_path, CONFIG.replace("10.0.17763}", "10.0.20348}"))
    assert windows.digest != before.digest
    assert windows.variants["ltsc2019"].digest != before.variants["ltsc2019"].digest


def test_the_images_build_args_reach_every_variant(tmp_path: Path) -> None:
    before = inputs_of(tmp_path, CONFIG)
    after = inputs_of(tmp_path, CONFIG.replace("GREETING: hello", "GREETING: bye"))
    assert all(after.variants[n].digest != before.variants[n].digest for n in before.variants)


def test_declaration_order_does_not_matter_but_names_do() -> None:
    a, b = InputDigest("sha256:" + "a" * 64, {}), InputDigest("sha256:" + "b" * 64, {})
    assert index_inputs({"x": a, "y": b}).digest == index_inputs({"y": b, "x": a}).digest
    assert index_inputs({"x": a, "y": b}).digest != index_inputs({"x": b, "y": a}).digest
    assert index_inputs({"x": a}).digest != index_inputs({"x": a, "y": b}).digest
    assert index_inputs({"x": a}).digest != a.digest  # an index's inputs never equal its one child's
