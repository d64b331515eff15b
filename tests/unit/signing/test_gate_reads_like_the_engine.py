"""The trust gate reads a Dockerfile as the engine (and the base resolution, the pinned copy and
provenance) does: a comment in Latin-1 does not stop it, so the gate checks the same bases the build
stands on instead of refusing a file the build would accept."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from pipeline.config import load_config
from pipeline.plan import RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.signing.trust import BaseImageGate, TrustPolicy
from tests.helpers import write_project

OWN = "127.0.0.1:5000/t/base"


def test_a_latin1_comment_does_not_stop_the_gate(tmp_path: Path) -> None:
    config = "registry: 127.0.0.1:5000/t\npipelines:\n  shop:\n    images:\n      app: {context: images/app}\n"
    loaded = load_config(write_project(tmp_path, config, {"app": f"FROM {OWN}:1\n"}))
    image = make_plan(loaded.spec, loaded.base_dir, [], RunContext()).images["shop/app"]
    image.dockerfile.write_bytes(b"# caf\xe9 (Latin-1)\n" + image.dockerfile.read_bytes())
    policy = TrustPolicy(((("127.0.0.1:5000/t/*",), (), ()),))
    gate = BaseImageGate(cast(RegistryClient, None), policy, {OWN})
    # The base is one the run builds itself: nothing to look up, and no "not UTF-8" refusal first.
    assert gate(image, {}) == []
