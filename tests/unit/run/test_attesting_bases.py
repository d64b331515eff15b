"""Provenance of an image reused rather than built names the base digest the run resolved (the one its
input digest used), never the tag read again: an upstream tag that moved after the lock was written
must not show up in the attestation of an image that still stands on the locked digest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from pipeline.attest.provenance import BaseImage
from pipeline.bases.resolve import BaseNotLocked, BaseResolver
from pipeline.config import load_config
from pipeline.errors import SigningError
from pipeline.plan import Plan, PlannedImage, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.run.attesting import RunAttester
from pipeline.signing.runsigner import RunSigner
from tests.helpers import write_project

OLD = "sha256:" + "a" * 64
MOVED = "sha256:" + "b" * 64
UPSTREAM = "127.0.0.1:5000/up/base:1"


class _TagReadAgain:
    """A registry whose tag has moved: any lookup of it answers the new digest."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def resolve_digest(self, ref: Any) -> str:
        self.lookups.append(str(ref))
        return MOVED


class _RunResolution:
    """The run's resolution of its external bases (a stand-in for BaseResolver.digests)."""

    def __init__(self, answer: Mapping[str, str] | Exception) -> None:
        self.answer = answer

    def digests(self, view: PlannedImage, build_args: Mapping[str, str]) -> dict[str, str]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)


def _app(tmp_path: Path) -> PlannedImage:
    config = "registry: 127.0.0.1:5000/t\npipelines:\n  shop:\n    images:\n      app: {context: images/app}\n"
    loaded = load_config(write_project(tmp_path, config, {"app": f"FROM {UPSTREAM}\nCOPY x /x\n"}))
    return make_plan(loaded.spec, loaded.base_dir, [], RunContext()).images["shop/app"]


def _attester(tmp_path: Path, registry: _TagReadAgain, resolution: _RunResolution | None) -> RunAttester:
    return RunAttester(
        cast(RegistryClient, registry),
        cast(RunSigner, None),
        cast(Plan, None),
        tmp_path / "pipelines.yaml",
        "id",
        bases=cast(BaseResolver, resolution) if resolution is not None else None,
    )


def test_a_reused_image_names_the_runs_resolution_not_the_moved_tag(tmp_path: Path) -> None:
    registry = _TagReadAgain()
    attester = _attester(tmp_path, registry, _RunResolution({UPSTREAM: OLD}))
    assert attester._read_bases(_app(tmp_path), None) == (BaseImage(UPSTREAM, OLD),)
    assert registry.lookups == []  # the tag was not read again


def test_a_base_the_run_cannot_resolve_is_a_refusal_naming_the_image(tmp_path: Path) -> None:
    attester = _attester(tmp_path, _TagReadAgain(), _RunResolution(BaseNotLocked("base 1 not in the lock")))
    with pytest.raises(SigningError, match=r"^shop/app: attesting: base 1 not in the lock$"):
        attester._read_bases(_app(tmp_path), None)


def test_without_a_run_resolution_the_registry_answers(tmp_path: Path) -> None:
    """Outside a run (no resolver), the tag is looked up: what the registry says now."""
    registry = _TagReadAgain()
    assert _attester(tmp_path, registry, None)._read_bases(_app(tmp_path), None) == (BaseImage(UPSTREAM, MOVED),)
    assert registry.lookups == [UPSTREAM]
