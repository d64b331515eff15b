"""Randomized registry faults between pipeline (and the engine) and the registry: every run either
succeeds (retries) or fails with a clear message, and after each the registry is consistent."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.signing.keys import read_public_key
from pipeline.signing.policy import KeyRequirement
from pipeline.signing.verify import verify_digest
from tests.faults.proxy import FaultPlan, fault_proxy
from tests.helpers import git, init_git, run_cli, shop_project
from tests.integration.conftest import Services

RUNS = int(os.environ.get("PIPELINE_FAULT_RUNS", "60"))
PASSWORD = "fault-test-passphrase"
RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
FLOATING = re.compile(r"^(\d+|\d+\.\d+|latest)$")


def check_registry(
    registry: RegistryClient, repositories: list[str], key: KeyRequirement, releases: dict[str, str]
) -> int:
    """Every floating tag names a complete, signed manifest; no release tag ever changed. Returns
    how many floating tags were checked."""
    checked = 0
    for name in repositories:
        repository = parse_repository(name)
        for tag in registry.list_tags(repository):
            digest = registry.resolve_digest(repository.with_tag(tag))
            assert digest is not None, f"{name}:{tag} listed but unresolvable"
            if RELEASE.match(tag):
                assert releases.setdefault(f"{name}:{tag}", digest) == digest, f"release tag {name}:{tag} moved"
            if FLOATING.match(tag):
                manifest = registry.get_manifest(repository.with_digest(digest)).json()
                for blob in [manifest["config"], *manifest["layers"]]:
                    assert registry.blob_exists(repository, blob["digest"]), f"{name}:{tag} misses {blob['digest']}"
                verified = verify_digest(registry, repository, digest, [key])
                assert verified.verified, f"{name}:{tag} ({digest}) is not signed: {verified.reason}"
                checked += 1
    return checked


# Lines a run prints when an injected fault outlasted its retries (never "unexpected error").
FAULT_SIGNS = re.compile(
    r"kept failing|cannot reach|after \d+ attempts|UNAVAILABLE|TOOMANYREQUESTS|toomanyrequests|"
    r"50[03]|429|timed? ?out|Timeout|connection|EOF|reset|broken pipe|injected",
    re.IGNORECASE,
)


def user_tags(registry: RegistryClient, repositories: list[str]) -> dict[str, str | None]:
    """Every release, floating and extra tag of the run's repositories -> its digest."""
    found: dict[str, str | None] = {}
    for name in repositories:
        repository = parse_repository(name)
        for tag in registry.list_tags(repository):
            if not tag.startswith(("sha-", "inputs-", "sha256-")):
                found[f"{name}:{tag}"] = registry.resolve_digest(repository.with_tag(tag))
    return found


RATE, HANG_RATE = 0.05, 0.002


@contextmanager
def quiet(plan: FaultPlan) -> Iterator[None]:
    """No faults while the test itself reads the registry."""
    plan.rate, plan.hang_rate = 0.0, 0.0
    try:
        yield
    finally:
        plan.rate, plan.hang_rate = RATE, HANG_RATE


@pytest.mark.timeout(3000)  # release runs with retries, backoff and hangs past the client timeout
def test_randomized_registry_faults_leave_a_consistent_registry(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    # Rare hangs longer than the client's timeout (3 s here) on top of the random faults.
    plan = FaultPlan(rate=RATE, seed=20261127, hang_rate=HANG_RATE, hang_seconds=4.0)
    outcomes = {"succeeded": 0, "failed": 0}
    failures: list[str] = []
    releases: dict[str, str] = {}
    with fault_proxy(services.plain_registry, plan) as proxy:
        shop_project(
            tmp_path,
            f"{proxy}/{namespace}",
            images=("base", "app"),
            extra_config='tags: {extra: ["release-{{ version }}"]}',
        )
        env = {
            "COSIGN_PASSWORD": PASSWORD,
            "PIPELINE_REGISTRY_TIMEOUT": "3",
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }
        assert run_cli(["keys", "generate"], tmp_path, env=env).code == 0
        init_git(tmp_path)
        key = KeyRequirement(read_public_key(tmp_path / "cosign.pub"), "cosign.pub")
        repositories = [f"{proxy}/{namespace}/base", f"{proxy}/{namespace}/app"]
        floating_checked = 0
        attempts = 0
        for run in range(RUNS):
            (tmp_path / "images/app/build.txt").write_text(f"build {run}\n")
            git(tmp_path, "add", "-A")
            git(tmp_path, "commit", "-qm", f"build {run}")
            version = f"1.{run // 10}.{run % 10}"
            # A failed run is retried with the same version, so an overwrite would be caught.
            for _retry in range(3):
                attempts += 1
                with quiet(plan), RegistryClient(lambda _: None) as registry:
                    before = user_tags(registry, repositories)
                started = time.monotonic()
                result = run_cli(["run", "--version", version], tmp_path, env=env, timeout=600)
                injected = plan.injected_since(started)
                assert "Traceback" not in result.output, result.output
                assert "unexpected error" not in result.output, result.output
                assert result.code in (0, 1), result.output
                with quiet(plan), RegistryClient(lambda _: None) as registry:
                    floating_checked += check_registry(registry, repositories, key, releases)
                    after = user_tags(registry, repositories)
                if result.code == 0:
                    outcomes["succeeded"] += 1
                    break
                outcomes["failed"] += 1
                last = result.stderr.strip().splitlines()[-1]
                assert last.startswith("error: "), result.output
                # The failure was one of ours: faults were injected during this run, and its message
                # is a registry failure's, not some other bug's.
                assert injected, f"run {version} failed with no fault injected: {result.output}"
                # The progress line of the failing step: `[ 1.8s] shop/app  failed  shop/app: <why>`.
                lines = result.stderr.splitlines()
                detail = [line.split(" failed ", 1)[1].strip() for line in lines if " failed " in line]
                assert any(FAULT_SIGNS.search(line) for line in [*detail, last]), result.output
                failures.append(f"{version}: {(detail[0] if detail else last)[:150]}")
                # Nothing of this version was published: no tag moved, none appeared.
                assert after == before, f"failed run {version} changed tags: {set(after.items()) ^ set(before.items())}"
    kinds = {fault for fault, _, _ in plan.injected}
    print(
        f"\nfault runs: {RUNS} versions in {attempts} runs, succeeded {outcomes['succeeded']}, "
        f"failed cleanly {outcomes['failed']}, requests {plan.requests}, faults injected {len(plan.injected)} "
        f"({', '.join(sorted(kinds))}), floating tags verified {floating_checked}, release tags tracked {len(releases)}"
    )
    for line in failures:
        print(f"  clean failure: {line}")
    assert len(plan.injected) >= RUNS // 2, "the proxy injected too few faults to mean anything"
    assert {"hang", "drop", "lost-answer", "429", "500", "503", "stall"} <= kinds, kinds
    assert outcomes["succeeded"] >= RUNS * 0.8, outcomes  # retries carry most runs through
