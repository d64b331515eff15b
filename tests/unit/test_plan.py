"""Build settings the plan resolves from three levels (top, pipeline, image): the nearest one wins."""

from __future__ import annotations

import dataclasses
import textwrap
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from pipeline.config.schema import ConfigSpec
from pipeline.plan import BuildSecret, Plan, PlannedImage, RunContext, make_plan
from pipeline.versioning import parse_version


def plan_of(root: Path, config: str) -> Plan:
    spec = ConfigSpec.model_validate(yaml.safe_load(textwrap.dedent(config)))
    return make_plan(spec, root, [], RunContext())


NETWORKS = """\
registry: r.example/x
{top}
pipelines:
  near:
    {pipeline}
    images:
      own: {{context: a, network: host}}
      inherits: {{context: b}}
  far:
    images:
      inherits: {{context: c}}
"""


@pytest.mark.parametrize(
    ("top", "pipeline", "expected"),
    [
        # (top level, pipeline near, images near/own, near/inherits, far/inherits)
        ("network: none", "network: default", {"near/own": "host", "near/inherits": "default", "far/inherits": "none"}),
        ("network: none", "", {"near/own": "host", "near/inherits": "none", "far/inherits": "none"}),
        ("", "network: none", {"near/own": "host", "near/inherits": "none", "far/inherits": None}),
        ("", "", {"near/own": "host", "near/inherits": None, "far/inherits": None}),
    ],
)
def test_network_nearest_wins(tmp_path: Path, top: str, pipeline: str, expected: dict[str, str | None]) -> None:
    plan = plan_of(tmp_path, NETWORKS.format(top=top, pipeline=pipeline))
    assert {key: image.network for key, image in plan.images.items()} == expected


def test_image_secrets_override_the_pipelines_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    plan = plan_of(
        tmp_path,
        """\
        registry: r.example/x
        pipelines:
          shop:
            secrets:
              npm_token: {env: PIPELINE_NPM}
              netrc: {file: ~/.netrc}
            images:
              app:
                context: a
                secrets:
                  npm_token: {file: secrets/npm}
              worker: {context: b}
        """,
    )
    assert plan.images["shop/app"].secrets == (
        BuildSecret("netrc", file=tmp_path / "home" / ".netrc"),
        BuildSecret("npm_token", file=(tmp_path / "secrets" / "npm").resolve()),
    )
    assert plan.images["shop/worker"].secrets == (
        BuildSecret("netrc", file=tmp_path / "home" / ".netrc"),
        BuildSecret("npm_token", env="PIPELINE_NPM"),
    )


BUILD_TAGS = """\
registry: r.example/x
pipelines:
  shop:
    images:
      base: {context: base}
      versioned: {context: v, build_args: {V: "{{ major }}.{{ minor }}"}}
      on_versioned: {context: o, depends_on: [versioned]}
      plain: {context: p, build_args: {BASE: "{{ images.base }}"}}
      variant_versioned:
        context: w
        variants: {amd: {platform: linux/amd64, build_args: {V: "{{ version }}"}}}
"""


@pytest.mark.parametrize("dirty", [False, True])
def test_a_build_whose_inputs_use_the_version_names_it_in_its_build_tag(tmp_path: Path, dirty: bool) -> None:
    """`sha-<commit>` names the commit's unversioned build; an image whose inputs render the version (or
    build on one that does) gets `sha-<commit>-<version>` in a versioned run, so no run moves the other."""
    spec = ConfigSpec.model_validate(yaml.safe_load(BUILD_TAGS))
    sha = "0123456789ab" + "c" * 28
    dirt = "-dirty" if dirty else ""
    for version, versioned in [(None, f"sha-0123456789ab{dirt}"), ("1.2.3+b7", f"sha-0123456789ab-1.2.3{dirt}")]:
        context = RunContext(version=None if version is None else parse_version(version), git_sha=sha, dirty=dirty)
        plan = make_plan(spec, tmp_path, [], context)
        build = {key.split("/")[1]: image.tags.build for key, image in plan.images.items()}
        assert build == {
            "base": (f"sha-0123456789ab{dirt}",),
            "versioned": (versioned,),
            "on_versioned": (versioned,),
            "plain": (f"sha-0123456789ab{dirt}",),
            "variant_versioned": (versioned,),
        }


def _models_in(value: object) -> list[object]:
    """Every pydantic model reachable from `value` through dataclasses, mappings and sequences."""
    if isinstance(value, BaseModel):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [m for f in dataclasses.fields(value) for m in _models_in(getattr(value, f.name))]
    if isinstance(value, Mapping):
        return [m for item in value.items() for m in _models_in(item)]
    if isinstance(value, (tuple, list)):
        return [m for item in value for m in _models_in(item)]
    return []


def test_planned_images_carry_no_config_models(tmp_path: Path) -> None:
    """The plan holds resolved values (signing, ACR settings, variants), not the pydantic config models."""
    plan = plan_of(
        tmp_path,
        """\
        registry: r.example/x
        sign: {key: keys/cosign.key, attest: [provenance]}
        acr: {registry: shop, resource_group: rg, subscription: s}
        pipelines:
          shop:
            tags: {variants: true, extra: ["{{ git.short_sha }}"]}
            secrets: {npm: {env: NPM}}
            images:
              app: {context: a, platforms: [linux/amd64, linux/arm64], paths: ["shared/**", VERSION]}
        """,
    )
    (image,) = plan.images.values()
    assert image.paths == ("shared/**", "VERSION")  # what `changed` reads
    assert image.sign is not None and image.sign.key == str((tmp_path / "keys/cosign.key").resolve())
    assert image.acr is not None and (image.acr.registry, image.acr.server) == ("shop", "shop.azurecr.io")
    assert _models_in(image) == []
    hints = typing.get_type_hints(PlannedImage)
    models = [name for name, hint in hints.items() for arg in _type_args(hint) if _is_model(arg)]
    assert models == []


def _type_args(hint: object) -> list[object]:
    return [hint, *(a for arg in typing.get_args(hint) for a in _type_args(arg))]


def _is_model(hint: object) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)


def test_plan_carries_each_pipelines_resolved_notify_block(tmp_path: Path) -> None:
    """notifying and redacting read the plan's blocks: a pipeline's own, else the top level's, none without."""
    plan = plan_of(
        tmp_path,
        """\
        registry: r.example/x
        notify: {targets: [{url: "https://hooks.example.com/top"}]}
        pipelines:
          own:
            notify: {events: [release], targets: [{url_env: SLACK_URL, kind: slack}]}
            images: {app: {context: a}, api: {context: b}}
          inherits:
            images: {web: {context: c}}
        """,
    )
    blocks = plan.notifications()
    assert {name: block.owner for name, block in blocks.items()} == {
        "own": "pipelines.own.notify",
        "inherits": "notify",
    }
    assert [t.url_env for t in blocks["own"].targets] == ["SLACK_URL"]
    assert [t.url for t in blocks["inherits"].targets] == ["https://hooks.example.com/top"]
    assert _models_in(plan.images["own/app"]) == []
    assert plan.subset({"inherits/web"}, {}).notifications() == {"inherits": blocks["inherits"]}
    without = plan_of(tmp_path, "registry: r.example/x\npipelines: {shop: {images: {app: {context: a}}}}\n")
    assert without.notifications() == {}
