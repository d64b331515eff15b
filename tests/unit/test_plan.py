"""Build settings the plan resolves from three levels (top, pipeline, image): the nearest one wins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline.config.schema import ConfigSpec
from pipeline.plan import BuildSecret, Plan, RunContext, make_plan


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
