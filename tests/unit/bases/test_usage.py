"""Which external bases a plan's images and variants stand on, and what rebuilds when one moves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from pipeline.bases.usage import BaseUse, Rebuild, base_uses, rebuilt_by
from pipeline.config.schema import ConfigSpec
from pipeline.dockerfile.bases import default_platform
from pipeline.plan import Plan, RunContext, make_plan

UP = "127.0.0.1:5000/up"
CONFIG = """\
registry: 127.0.0.1:5000/shop
pipelines:
  shop:
    images:
      base: {context: base}
      app: {context: app, depends_on: [base], build_args: {BASE: "{{ images.base }}"}}
      win:
        context: win
        variants:
          amd64: {platform: linux/amd64}
          arm64: {platform: linux/arm64}
          ltsc2019: {platform: windows/amd64, os_version: 10.0.17763, build_args: {TAG: ltsc2019}}
      lone: {context: lone}
      top: {context: top, depends_on: [app], build_args: {APP: "{{ images.app }}"}}
  tools:
    images:
      lint: {context: lint}
"""
DOCKERFILES = {
    # An external base, a stage, and COPY --from an external image: both externals counted, once each.
    "base": f"FROM {UP}/debian:12 AS build\nRUN true\nFROM build\nCOPY --from={UP}/tools:1 /x /x\n",
    # On the run's own image only: no external base.
    "app": "ARG BASE\nFROM ${BASE}\nCOPY . /\n",
    # Per variant, after the ARG rules: the Windows variant its own tag.
    "win": f"ARG TAG=bookworm\nFROM {UP}/debian:$TAG\n",
    "lone": "FROM scratch\nCOPY . /\n",
    "top": "ARG APP\nFROM ${APP}\nRUN --mount=from=" + UP + "/tools:1,target=/t true\n",
    "lint": f"FROM {UP}/debian:12\n",
}


def plan_of(root: Path, pipelines: list[str] | None = None) -> Plan:
    for name, text in DOCKERFILES.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Dockerfile").write_text(text)
    spec = ConfigSpec.model_validate(yaml.safe_load(textwrap.dedent(CONFIG)))
    return make_plan(spec, root, pipelines or [], RunContext())


def test_every_external_base_per_reference_and_platform_with_its_images(tmp_path: Path) -> None:
    here = default_platform()
    uses = base_uses(plan_of(tmp_path))
    expected = {
        BaseUse(f"{UP}/debian:12", here, None, ("shop/base", "tools/lint")),
        BaseUse(f"{UP}/tools:1", here, None, ("shop/base", "shop/top")),
        BaseUse(f"{UP}/debian:bookworm", "linux/amd64", None, ("shop/win",)),
        BaseUse(f"{UP}/debian:bookworm", "linux/arm64", None, ("shop/win",)),
        BaseUse(f"{UP}/debian:ltsc2019", "windows/amd64", "10.0.17763", ("shop/win",)),
    }
    assert set(uses) == expected
    # Sorted as the lock is: by reference, then platform.
    assert [u.key for u in uses] == sorted((u.key for u in uses), key=lambda k: (k[0], k[1], k[2] or ""))


def test_the_selected_pipelines_only(tmp_path: Path) -> None:
    uses = base_uses(plan_of(tmp_path, ["tools"]))
    assert uses == [BaseUse(f"{UP}/debian:12", default_platform(), None, ("tools/lint",))]


def test_what_rebuilds_is_the_images_on_the_base_then_their_dependants(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    assert rebuilt_by(plan, ["shop/base"]) == Rebuild(("shop/base",), ("shop/app", "shop/top"))
    assert rebuilt_by(plan, ["tools/lint", "shop/win"]) == Rebuild(("shop/win", "tools/lint"), ())
    assert rebuilt_by(plan, ["shop/top", "shop/base"]).all == ("shop/base", "shop/top", "shop/app")
    assert rebuilt_by(plan, []) == Rebuild((), ())
