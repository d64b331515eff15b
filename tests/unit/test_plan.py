"""Build settings the plan resolves from three levels (top, pipeline, image): the nearest one wins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.config.schema import ConfigSpec
from pipeline.plan import BuildSecret, Plan, RunContext, make_plan
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
