"""The run's base lookups overlap its other start-of-run registry work (the release claim, the release
tags): the claim is not waited for before the bases are asked about, and a refused base still stops the
run before anything is reused, built or pushed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

from pipeline.bases.resolve import BaseResolver, own_repositories
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import ImageRef
from pipeline.release.claims import ReleaseClaims
from pipeline.run.executor import Executor, RunOptions
from tests.unit.bases.fakes import FakeRegistry
from tests.unit.bases.test_usage import UP, plan_of


class SlowRegistry(FakeRegistry):
    """Each tag lookup says it started."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = threading.Event()

    def resolve_digest(self, ref: ImageRef) -> str | None:
        self.asked.set()
        return super().resolve_digest(ref)


class Claims:
    """A claim on the git remote (a push: slower than a HEAD); records whether a base was being looked up
    while it was made."""

    def __init__(self, registry: SlowRegistry) -> None:
        self.registry = registry
        self.overlapped: bool | None = None
        self.abandoned = False

    def claim(self) -> None:
        self.overlapped = self.registry.asked.wait(timeout=3)

    def abandon(self) -> None:
        self.abandoned = True


def test_bases_are_looked_up_during_the_claim_and_a_refused_one_still_stops_everything(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ["tools"])  # tools/lint FROM {UP}/debian:12, which the registry does not have
    registry = SlowRegistry()
    claims = Claims(registry)
    executor = Executor(
        plan,
        {},  # no engine: anything built would fail the test
        cast(RegistryClient, registry),
        lambda host: None,
        RunOptions(push=True),
        claims=cast(ReleaseClaims, claims),
        bases=BaseResolver(cast(RegistryClient, registry), own=own_repositories(plan)),
    )
    result = executor.run()
    assert claims.overlapped is True
    assert set(registry.heads) == {f"{UP}/debian:12"}
    lint = result.images["tools/lint"]
    assert (lint.status.value, lint.error) == (
        "failed",
        f"tools/lint: {tmp_path}/lint/Dockerfile:1: base image {UP}/debian:12 is not in the registry, so the "
        "build cannot stand on a known digest; refusing to build",
    )
    assert claims.abandoned and not result.published
    assert [(k, i.digest, i.tags) for k, i in result.images.items()] == [("tools/lint", None, [])]
