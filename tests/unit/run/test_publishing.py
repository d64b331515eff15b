"""Publishing a run's tags into a registry in memory (no services): a versioned run's release and floating
tags written by digest and read back onto the report rows, a failed image left untagged, and the outcomes
publishing reads immutable."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import semver

from pipeline.plan import RunContext
from pipeline.registry.client import RegistryClient
from pipeline.release.publish import Action
from pipeline.run.publishing import publish
from pipeline.run.results import Event, ImageOutcome, RunOptions, RunResult, Status
from tests.unit.run.fakes import REGISTRY, FakeBackend, MemoryRegistry, plan_of, run_images

TWO = (
    "      base: {context: images/base}\n"
    '      app: {context: images/app, depends_on: [base], build_args: {BASE: "{{ images.base }}"}}\n'
)
VERSION = RunContext(version=semver.Version.parse("1.2.3"), git_sha="c" * 40)


def published(tmp_path: Path, fail: str | None = None) -> tuple[MemoryRegistry, RunResult, dict[str, str]]:
    """Build TWO at 1.2.3 into a registry in memory, then publish (`fail`: that image's outcome failed)."""
    plan = plan_of(tmp_path, TWO, context=VERSION)
    registry = MemoryRegistry()
    rows, _ = run_images(plan, registry, FakeBackend(registry), RunOptions())
    digests = {key: str(row.digest) for key, row in rows.items()}
    outcomes = {key: ImageOutcome.of(row) for key, row in rows.items()}
    if fail is not None:
        outcomes[fail] = ImageOutcome(fail, rows[fail].repository, Status.FAILED)
    result = RunResult(images=rows)
    events: list[Event] = []

    def emit(key: str, step: str, message: str, log_tail: tuple[str, ...] = ()) -> None:
        events.append(Event(key, step, message, 0.0, log_tail))

    publish(plan, cast(RegistryClient, registry), outcomes, result, False, emit)
    return registry, result, digests


def test_a_versioned_run_writes_release_and_floating_tags_by_digest(tmp_path: Path) -> None:
    registry, result, digests = published(tmp_path)
    assert (result.published, result.error) == (True, None)
    for key, name in (("shop/base", "base"), ("shop/app", "app")):
        for tag in ("1.2.3", "1.2", "1", "latest"):
            assert registry.tags[f"{REGISTRY}/{name}:{tag}"] == digests[key], tag
        assert {"1.2.3", "1.2", "1", "latest"} <= set(result.images[key].tags)
    created = {(c.image, c.tag): (c.kind, c.action, c.digest) for c in result.tag_changes}
    assert created[("shop/app", "1.2.3")] == ("release", Action.CREATE, digests["shop/app"])
    assert created[("shop/base", "latest")] == ("floating", Action.CREATE, digests["shop/base"])


def test_publishing_again_leaves_the_tags_unchanged(tmp_path: Path) -> None:
    registry, _, digests = published(tmp_path)
    plan = plan_of(tmp_path, TWO, context=VERSION)
    outcomes = {
        key: ImageOutcome(key, str(plan.images[key].repository), Status.SUCCEEDED, digest)
        for key, digest in digests.items()
    }
    rows, _ = run_images(plan, registry, FakeBackend(registry), RunOptions())
    again = RunResult(images=rows)
    before = dict(registry.tags)
    publish(plan, cast(RegistryClient, registry), outcomes, again, False, lambda *_a, **_k: None)
    assert registry.tags == before
    assert {c.action for c in again.tag_changes} <= {Action.UNCHANGED, Action.STAYS}


def test_a_failed_image_s_tags_are_not_written(tmp_path: Path) -> None:
    """A failed outcome holds no digest: nothing is tagged for it, while the others' tags are written."""
    registry, _, digests = published(tmp_path, fail="shop/app")
    app = sorted(k.rpartition(":")[2] for k in registry.tags if k.startswith(f"{REGISTRY}/app:"))
    assert app == ["inputs-" + app[0][7:], "sha-" + "c" * 12]  # only what its build pushed
    assert registry.tags[f"{REGISTRY}/base:1.2.3"] == digests["shop/base"]


def test_an_outcome_cannot_change_after_it_is_handed_over() -> None:
    variants: dict[str, str | None] = {"ltsc2019": "sha256:" + "1" * 64}
    outcome = ImageOutcome("shop/app", f"{REGISTRY}/app", Status.SUCCEEDED, "sha256:" + "2" * 64, variants)
    variants["ltsc2022"] = "sha256:" + "3" * 64  # the builder's dict changing later
    assert dict(outcome.variants) == {"ltsc2019": "sha256:" + "1" * 64}
    with pytest.raises(TypeError):
        outcome.variants["ltsc2019"] = None  # type: ignore[index]
    same = {"ltsc2019": "sha256:" + "1" * 64}
    assert outcome == ImageOutcome("shop/app", f"{REGISTRY}/app", Status.SUCCEEDED, "sha256:" + "2" * 64, same)
