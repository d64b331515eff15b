"""Engine pushes retry by the registry retry policy, against the real engine and a registry behind the
fault proxy (the engine's own wording of a 429 is what decides that a push is worth another attempt)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pipeline.builders import BuildRequest
from pipeline.builders.classic import DockerBuilder
from pipeline.common import retry
from pipeline.common.reporting import Forward
from pipeline.registry.reference import parse_reference
from tests.faults.proxy import FaultPlan, fault_proxy
from tests.integration.conftest import RegistryPeek, Services


class FirstUploads(FaultPlan):
    """Answer the first `count` blob upload starts with `fault`, forward everything else."""

    def __init__(self, fault: str, count: int) -> None:
        super().__init__()
        self.fault, self.left = fault, count

    def choose(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests += 1
            if method == "POST" and "/blobs/uploads" in path and self.left > 0:
                self.left -= 1
                self.injected.append((self.fault, method, path))
                return self.fault
            return None


def test_engine_push_retries_a_429_by_the_policy(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(retry.POLICY, "sleep", waits.append)
    (tmp_path / "Dockerfile").write_text(f"FROM scratch\nCOPY marker /marker\nLABEL run={uuid.uuid4().hex}\n")
    (tmp_path / "marker").write_text(uuid.uuid4().hex)
    # A 429: the engine gives up on it at once (a 5xx on a layer it retries itself, for a while).
    count = 2
    plan = FirstUploads("429", count)
    with fault_proxy(services.plain_registry, plan) as proxy:
        request = BuildRequest(
            image="retry/app",
            context=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            tag=parse_reference(f"{proxy}/{namespace}/app:sha-1"),
        )
        lines: list[str] = []
        outcome = DockerBuilder().build(
            request, Forward(step=lambda _image, step, message: lines.append(f"{step}: {message}"))
        )
    assert len(plan.injected) == count
    assert outcome.pushed_digest == plain_peek.digest(f"{namespace}/app", "sha-1")
    # The engine keeps the registry's Retry-After to itself: each failed push waited the policy's backoff.
    assert len(waits) == count, lines
    for attempt, wait in enumerate(waits):
        low = retry.BACKOFF_INITIAL * 2**attempt
        assert low <= wait <= low + retry.BACKOFF_JITTER
    assert f"push: retrying the push (attempt 2 of {retry.ATTEMPTS})" in lines
