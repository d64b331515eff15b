"""A base update's trigger finds and resolves bases as the run does (bases.resolve.plan_builds and
BaseResolver.bases_of): a stage that names its own platform (`FROM --platform=$BUILDPLATFORM`) stands on
the whole index, so the index its last build recorded is no move, and a real move names the digest the
run then builds on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from pipeline.bases.resolve import open_resolver, plan_builds
from pipeline.cache.inputs import BASES_LABEL
from pipeline.config import load_config
from pipeline.dockerfile.bases import default_platform
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import Manifest, RegistryClient
from pipeline.registry.reference import Repository, parse_reference
from pipeline.triggers.bases import BaseMove, find_moves
from pipeline.versioning import sha_tag
from tests.helpers import write_project
from tests.unit.bases.fakes import FakeRegistry

BASE = "up.example/lib/base:1"
SHA = "c" * 40


class BuiltRegistry(FakeRegistry):
    """The fake registry, plus the tags of a repository and the labels of the images built into it."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, dict[str, str]] = {}

    def list_tags(self, repository: Repository) -> list[str]:
        return [ref.rpartition(":")[2] for ref in self.tags if ref.rpartition(":")[0] == str(repository)]

    def manifest_labels(self, repository: Repository, found: Manifest) -> dict[str, Any]:
        return self.labels.get(found.digest, {})


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def cross_compiling(root: Path) -> tuple[Path, Plan]:
    config_file = write_project(
        root,
        """\
        registry: r.example/x
        pipelines:
          p:
            images:
              app: {context: images/app}
        """,
        {"app": f"FROM --platform=$BUILDPLATFORM {BASE} AS tools\nFROM scratch\nCOPY --from=tools / /\n"},
    )
    loaded = load_config(config_file)
    return config_file, make_plan(loaded.spec, loaded.base_dir, ["p"], RunContext(), loaded.positions)


def upstream(registry: BuiltRegistry, content: str) -> str:
    """The upstream base as an index of one child for this machine's platform, pushed to BASE; its digest."""
    child = registry.image(f"up.example/lib/base:child-{content}", content)
    return registry.index(BASE, {default_platform(): child})


def run_records(registry: BuiltRegistry, config_file: Path, plan: Plan) -> dict[str, str]:
    """The bases the run's label records for the image (cache.inputs' BaseLookup: the resolver's digests)."""
    resolver = open_resolver(cast(RegistryClient, registry), plan, config_file)
    ((view, args),) = plan_builds(plan)
    return resolver.digests(view, args)


def moves(registry: BuiltRegistry, config_file: Path, plan: Plan) -> tuple[set[str], list[BaseMove]]:
    client = cast(RegistryClient, registry)
    resolver = open_resolver(client, plan, config_file)
    return find_moves(plan, client, resolver, [parse_reference(BASE)], [SHA], None)


def test_a_build_platform_stage_on_an_unmoved_index_is_no_move_and_a_move_names_the_runs_digest(
    tmp_path: Path,
) -> None:
    config_file, plan = cross_compiling(tmp_path)
    registry = BuiltRegistry()
    first = upstream(registry, "one")
    recorded = run_records(registry, config_file, plan)
    assert recorded == {BASE: first}  # the whole index, not this platform's child
    built = registry.image(f"r.example/x/app:{sha_tag(SHA)}", "built")
    registry.labels[built] = {BASES_LABEL: json.dumps(recorded)}

    # Delivered again with nothing moved: no move (no rebuild, no patch release of identical images).
    assert moves(registry, config_file, plan) == ({"p/app"}, [])

    # The upstream tag moves: one move, to the digest the run builds on and records.
    second = upstream(registry, "two")
    assert moves(registry, config_file, plan) == ({"p/app"}, [BaseMove("p/app", BASE, first, second)])
    assert run_records(registry, config_file, plan) == {BASE: second}
